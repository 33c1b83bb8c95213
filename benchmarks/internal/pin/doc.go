// Package pin runs processes on one CPU. Linux keeps a CPU affinity mask
// per thread, and a new process inherits the mask of the thread that starts
// it, so a process started from a thread pinned to a CPU runs on that CPU
// alone, with every thread it ever makes. Setting the mask of a running Go
// program would miss the threads it already has.
package pin
