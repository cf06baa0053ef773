// Command etcd is a thin main around etcd's server package: etcd's own
// module uses relative replace directives, so `go install` cannot build it.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
