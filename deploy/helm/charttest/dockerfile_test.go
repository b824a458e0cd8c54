package charttest

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The images cannot be built in CI (no container engine), so this test
// holds deploy/docker/Dockerfile to the steps CI does run: the same build
// command, the same OpenBLAS install script, the agreed base images and a
// non-root user, with nothing the build needs left out of the context.

const (
	repoRoot       = "../../.."
	dockerfilePath = "../../docker/Dockerfile"
	// ciBuildFlags is how CI builds the binaries.
	ciBuildFlags = `CGO_ENABLED=0 go build -trimpath -ldflags='-s -w'`
)

// instruction is one Dockerfile instruction with continuation lines joined.
type instruction struct {
	keyword string
	args    string
}

// stage is one FROM ... AS name section.
type stage struct {
	name, base   string
	instructions []instruction
}

func parseDockerfile(t *testing.T, file string) (args map[string]string, stages []stage) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	args = map[string]string{}
	var logical []string
	var current strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && current.Len() == 0) {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			current.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		current.WriteString(trimmed)
		logical = append(logical, current.String())
		current.Reset()
	}
	argRef := regexp.MustCompile(`\$\{(\w+)\}`)
	for _, l := range logical {
		keyword, rest, _ := strings.Cut(l, " ")
		keyword = strings.ToUpper(keyword)
		switch {
		case keyword == "ARG" && len(stages) == 0:
			name, value, _ := strings.Cut(rest, "=")
			args[name] = value
		case keyword == "FROM":
			fields := strings.Fields(rest)
			base := argRef.ReplaceAllStringFunc(fields[0], func(ref string) string {
				return args[argRef.FindStringSubmatch(ref)[1]]
			})
			st := stage{base: base}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				st.name = fields[2]
			}
			stages = append(stages, st)
		default:
			if len(stages) == 0 {
				t.Fatalf("%s: %s before FROM", file, keyword)
			}
			last := &stages[len(stages)-1]
			last.instructions = append(last.instructions, instruction{keyword, rest})
		}
	}
	return args, stages
}

func findStage(t *testing.T, stages []stage, name string) stage {
	t.Helper()
	for _, s := range stages {
		if s.name == name {
			return s
		}
	}
	t.Fatalf("Dockerfile has no stage %q", name)
	return stage{}
}

func TestDockerfile(t *testing.T) {
	_, stages := parseDockerfile(t, dockerfilePath)
	names := map[string]bool{}
	for _, s := range stages {
		names[s.name] = true
	}

	source := findStage(t, stages, "source")
	if source.base != "golang:1.26-bookworm" {
		t.Errorf("source stage from %q, want golang:1.26-bookworm", source.base)
	}

	for _, bin := range []string{"coordinator", "worker"} {
		build := findStage(t, stages, "build-"+bin)
		if !names[build.base] {
			t.Errorf("build-%s stage from %q, want a stage of this file", bin, build.base)
		}
		want := ciBuildFlags + " -o /out/" + bin + " ./cmd/" + bin
		if !slices.ContainsFunc(build.instructions, func(in instruction) bool {
			return in.keyword == "RUN" && strings.HasSuffix(in.args, want)
		}) {
			t.Errorf("build-%s stage does not run %q", bin, want)
		}
	}

	finals := map[string]string{
		"coordinator": "gcr.io/distroless/static-debian12:nonroot",
		"worker":      "debian:bookworm-slim",
	}
	for name, base := range finals {
		st := findStage(t, stages, name)
		if st.base != base {
			t.Errorf("%s stage from %q, want %q", name, st.base, base)
		}
		var user, entrypoint string
		for _, in := range st.instructions {
			switch in.keyword {
			case "USER":
				user = in.args
			case "ENTRYPOINT":
				entrypoint = in.args
			}
		}
		if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || uid == "root" {
			t.Errorf("%s stage runs as %q, want a non-root numeric user", name, user)
		}
		if !strings.Contains(entrypoint, "/usr/local/bin/"+name) {
			t.Errorf("%s stage entrypoint %q, want /usr/local/bin/%s", name, entrypoint, name)
		}
		if !slices.ContainsFunc(st.instructions, func(in instruction) bool {
			return in.keyword == "COPY" && strings.Contains(in.args, "--from=build-"+name+" /out/"+name)
		}) {
			t.Errorf("%s stage does not copy its binary from build-%s", name, name)
		}
	}

	// The worker's OpenBLAS comes from the script CI runs.
	worker := findStage(t, stages, "worker")
	if !slices.ContainsFunc(worker.instructions, func(in instruction) bool {
		return in.keyword == "RUN" && strings.Contains(in.args, "install-openblas.sh")
	}) {
		t.Error("worker stage does not run .ci/install-openblas.sh")
	}
	script, err := os.ReadFile(filepath.Join(repoRoot, ".ci", "install-openblas.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), "libopenblas0-pthread") {
		t.Error(".ci/install-openblas.sh no longer installs libopenblas0-pthread")
	}
	// So does its oneDNN (bf16 matrix products).
	if !slices.ContainsFunc(worker.instructions, func(in instruction) bool {
		return in.keyword == "RUN" && strings.Contains(in.args, "install-onednn.sh")
	}) {
		t.Error("worker stage does not run .ci/install-onednn.sh")
	}
}

// TestDockerignoreKeepsBuildInputs checks that every context path the
// Dockerfile copies, and the files the build compiles, survive
// Dockerfile.dockerignore.
func TestDockerignoreKeepsBuildInputs(t *testing.T) {
	data, err := os.ReadFile(dockerfilePath + ".dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			if strings.HasPrefix(line, "!") {
				t.Fatalf("exception pattern %q: the check below does not handle them", line)
			}
			patterns = append(patterns, line)
		}
	}

	needed := []string{"go.mod", "go.sum", ".ci/install-openblas.sh", "cmd/worker/main.go", "cmd/coordinator/main.go"}
	for _, dir := range []string{"cmd", "model", "pipeline", "storage", "sharding", "schemas", "internal"} {
		_ = filepath.WalkDir(filepath.Join(repoRoot, dir), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") && !strings.Contains(p, "/testdata/") {
				rel, _ := filepath.Rel(repoRoot, p)
				needed = append(needed, filepath.ToSlash(rel))
			}
			return nil
		})
	}
	for _, p := range needed {
		for _, pat := range patterns {
			if ignored(pat, p) {
				t.Errorf("Dockerfile.dockerignore pattern %q leaves out %s", pat, p)
			}
		}
	}
	for _, p := range []string{".git/config", "model/tokenizer/testdata/x.json", "deploy/helm/blipflow/Chart.yaml", "cmd/worker/run_test.go"} {
		if !slices.ContainsFunc(patterns, func(pat string) bool { return ignored(pat, p) }) {
			t.Errorf("Dockerfile.dockerignore keeps %s in the context", p)
		}
	}
}

// ignored reports whether a .dockerignore pattern excludes the
// slash-separated context path p: the pattern matches p or one of its
// parent folders, and a leading "**/" matches any depth.
func ignored(pattern, p string) bool {
	pattern = strings.TrimPrefix(pattern, "/")
	parts := strings.Split(p, "/")
	for end := 1; end <= len(parts); end++ {
		prefix := strings.Join(parts[:end], "/")
		if ok, _ := path.Match(pattern, prefix); ok {
			return true
		}
		if rest, ok := strings.CutPrefix(pattern, "**/"); ok {
			for start := 0; start < end; start++ {
				if ok, _ := path.Match(rest, strings.Join(parts[start:end], "/")); ok {
					return true
				}
			}
		}
	}
	return false
}
