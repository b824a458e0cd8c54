package genflags

import (
	"flag"
	"io"
	"strings"
	"testing"

	"blipflow/model/generate"
)

func parse(t *testing.T, args ...string) (generate.Config, []string, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := Register(fs)
	if err := fs.Parse(args); err != nil {
		return generate.Config{}, nil, err
	}
	c, err := f.Config()
	return c, fs.Args(), err
}

// The README's sampling line: --do-sample takes no value, so the image
// after the flags stays an argument.
func TestDoSampleIsABoolean(t *testing.T) {
	c, rest, err := parse(t, "--do-sample", "--temperature", "0.7", "--seed", "1", "img.png")
	if err != nil {
		t.Fatal(err)
	}
	if c.DoSample == nil || !*c.DoSample || c.Temperature == nil || *c.Temperature != 0.7 || c.Seed == nil || *c.Seed != 1 {
		t.Fatalf("config %+v", c)
	}
	if len(rest) != 1 || rest[0] != "img.png" {
		t.Fatalf("arguments %q, want the image", rest)
	}
	c, rest, err = parse(t, "--do-sample", "img.png")
	if err != nil || c.DoSample == nil || !*c.DoSample || len(rest) != 1 {
		t.Fatalf("--do-sample img.png: %+v %q %v", c, rest, err)
	}
	c, _, err = parse(t, "--do-sample=false")
	if err != nil || c.DoSample == nil || *c.DoSample {
		t.Fatalf("--do-sample=false: %+v %v", c, err)
	}
}

func TestOnlyGivenFlagsOverride(t *testing.T) {
	c, _, err := parse(t, "--num-beams", "3", "--early-stopping", "never")
	if err != nil {
		t.Fatal(err)
	}
	want := generate.Config{NumBeams: generate.Int(3), EarlyStopping: generate.EarlyStop(generate.EarlyStopNever)}
	if got, _, _ := parse(t); got.MaxNewTokens != nil {
		t.Fatal("an unset flag overrides")
	}
	if *c.NumBeams != *want.NumBeams || *c.EarlyStopping != *want.EarlyStopping || c.MaxNewTokens != nil || c.DoSample != nil {
		t.Fatalf("config %+v", c)
	}
}

func TestErrorsNameTheFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-new-tokens", "abc"}, `invalid value "abc" for flag -max-new-tokens`},
		{[]string{"--max-new-tokens", "0"}, "--max-new-tokens: want an integer of at least 1, got 0"},
		{[]string{"--temperature", "x"}, `invalid value "x" for flag -temperature`},
		{[]string{"--temperature", "0"}, "--temperature: want a positive number"},
		{[]string{"--top-p", "2"}, "--top-p: want a number from 0 to 1"},
		{[]string{"--early-stopping", "maybe"}, `--early-stopping: want true, false or never, got "maybe"`},
		{[]string{"--seed", "-1"}, `invalid value "-1" for flag -seed`},
	} {
		_, _, err := parse(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "json") {
			t.Errorf("%q: error %v, want %q", c.args, err, c.want)
		}
	}
}

func TestHelpShowsTypes(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var help strings.Builder
	fs.SetOutput(&help)
	Register(fs)
	fs.PrintDefaults()
	for _, want := range []string{"-max-new-tokens int", "-temperature float", "-seed uint", "-early-stopping string"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, help.String())
		}
	}
	if strings.Contains(help.String(), "-do-sample string") || strings.Contains(help.String(), "-do-sample value") {
		t.Errorf("--do-sample is not shown as a boolean:\n%s", help.String())
	}
}
