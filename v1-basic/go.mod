module myrpc/v1-basic

go 1.23

require (
	google.golang.org/protobuf v1.36.12
	gopkg.in/yaml.v3 v3.0.1
	myrpc/shared/proto v0.0.0
)

require (
	github.com/kr/pretty v0.1.0 // indirect
	gopkg.in/check.v1 v1.0.0-20180628173108-788fd7840127 // indirect
)

replace myrpc/shared/proto => ../shared/proto
