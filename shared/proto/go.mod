module myrpc/shared/proto

go 1.23

require google.golang.org/protobuf v1.36.12

require go.uber.org/goleak v1.3.0
