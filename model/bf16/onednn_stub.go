package bf16

import "testing"

// loadOneDNN is replaced by the oneDNN engine.
func loadOneDNN(o Options) (Engine, error) { return nil, errNoOneDNN }

func oneDNNTestEngines(t testing.TB) []namedEngine { return nil }
