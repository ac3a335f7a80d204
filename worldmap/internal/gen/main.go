// Command gen writes worldmap/land_gen.go from source/land-110m.json. It is
// run by `go generate ./worldmap` (from the worldmap directory).
package main

import (
	"fmt"
	"os"

	"doorman/worldmap"
	"doorman/worldmap/internal/topo"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "worldmap gen:", err)
		os.Exit(1)
	}
}

func run() error {
	src, err := os.ReadFile("source/land-110m.json")
	if err != nil {
		return err
	}
	path, err := topo.LandPath(src, "land", worldmap.Projection)
	if err != nil {
		return err
	}
	return os.WriteFile("land_gen.go", topo.GoFile(path), 0o644)
}
