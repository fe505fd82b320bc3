package service_test

import (
	"fmt"
	"os"
	"time"

	"github.com/artifact-archiver/artifact-archiver/pkg/service"
)

// A configuration binds its fields to rows of an Env: the defaults are set
// at once, Parse overwrites them from the environment, and the same rows
// write -h.
func ExampleEnv() {
	var cfg struct {
		Addr  string
		Grace time.Duration
		Hosts []string
	}
	var e service.Env
	e.String(&cfg.Addr, "EXAMPLE_ADDR", ":9090", "address of `/metrics`")
	e.Duration(&cfg.Grace, "EXAMPLE_GRACE", time.Minute, "drain time after SIGTERM")
	e.List(&cfg.Hosts, "EXAMPLE_HOSTS", "comma-separated hosts").DefaultText("any")

	env := map[string]string{"EXAMPLE_GRACE": "90s", "EXAMPLE_HOSTS": "a.example, b.example"}
	if err := e.Parse(func(k string) string { return env[k] }); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("%s %s %q\n\n", cfg.Addr, cfg.Grace, cfg.Hosts)
	service.WriteUsage(os.Stdout, &e)

	err := e.Parse(func(k string) string { return map[string]string{"EXAMPLE_GRACE": "soon"}[k] })
	fmt.Println(err)
	// Output:
	// :9090 1m30s ["a.example" "b.example"]
	//
	// Environment:
	//   EXAMPLE_ADDR (default :9090)
	//       address of /metrics
	//   EXAMPLE_GRACE (default 1m)
	//       drain time after SIGTERM
	//   EXAMPLE_HOSTS (default: any)
	//       comma-separated hosts
	// EXAMPLE_GRACE="soon": not a duration
}
