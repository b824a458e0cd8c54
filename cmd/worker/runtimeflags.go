package main

import (
	"flag"
	"fmt"
	"os"

	"blipflow/model/engine"
	"blipflow/model/hub"
	"blipflow/model/nn"
)

// runtimeFlags registers the flags that choose how the model runs
// (--backend for the fp32 BLAS, --dtype for the weights) on fs. The returned
// options, read after fs.Parse, open checkpoints accordingly (with a
// download progress bar for Hub models).
func runtimeFlags(fs *flag.FlagSet) *engine.Options {
	o := &engine.Options{Hub: hub.Options{Progress: os.Stderr}}
	o.RegisterFlags(fs)
	return o
}

// openOps builds the ops o chooses now, printing fallback warnings.
func openOps(o *engine.Options) (nn.Ops, error) {
	return o.OpenBackend(func(s string) { fmt.Fprintln(os.Stderr, "warning:", s) })
}
