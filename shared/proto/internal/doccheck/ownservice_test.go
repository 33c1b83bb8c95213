package doccheck

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestYourOwnService does what docs/your-own-service.md says, in order:
// it runs each command block marked <!-- run --> in one bash session,
// writes each file block marked <!-- file: path --> where the session
// stands, and checks that the output block marked <!-- output --> is what
// the commands printed. Only the line that sets MYRPC is replaced: the
// test points it at this repository.
func TestYourOwnService(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module of its own")
	}
	root, err := filepath.Abs("../../../..")
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(root, "docs", "your-own-service.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)<!-- (run|output|file: ([^ ]+)) -->\n```[a-z]*\n(.*?)```").FindAllStringSubmatch(string(page), -1)
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	fmt.Fprintf(&script, "export MYRPC=%q\n", root)
	var want string
	runs, files := 0, 0
	for _, b := range blocks {
		switch {
		case b[1] == "run":
			runs++
			for _, line := range strings.Split(b[3], "\n") {
				if strings.HasPrefix(line, "export MYRPC=") {
					continue
				}
				script.WriteString(line + "\n")
			}
		case b[1] == "output":
			want = b[3]
		default:
			files++
			fmt.Fprintf(&script, "mkdir -p \"$(dirname %s)\"\ncat > %s <<'MYRPC_EOF'\n%sMYRPC_EOF\n", b[2], b[2], b[3])
		}
	}
	if runs < 3 || files < 3 || want == "" {
		t.Fatalf("the page has %d command blocks, %d files and output %q: the markers are missing", runs, files, want)
	}
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the page's commands failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), want) {
		t.Fatalf("the commands printed\n%s\nthe page says they print\n%s", out, want)
	}
}
