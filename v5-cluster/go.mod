module myrpc/v5-cluster

go 1.26.0

require (
	github.com/panjf2000/ants/v2 v2.12.1
	go.uber.org/goleak v1.3.0
	golang.org/x/sys v0.50.0
	google.golang.org/protobuf v1.36.12
	gopkg.in/yaml.v3 v3.0.1
	myrpc/shared/proto v0.0.0
)

require (
	github.com/kr/text v0.1.0 // indirect
	golang.org/x/sync v0.11.0 // indirect
)

replace myrpc/shared/proto => ../shared/proto
