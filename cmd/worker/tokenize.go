package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"blipflow/internal/cli"
	"blipflow/model/tokenizer"
)

func init() {
	commands["tokenize"] = command{summary: "print token ids and tokens of texts", run: runTokenize}
}

// tokenizeLine is one line of the tokenize command's output.
type tokenizeLine struct {
	Text   string   `json:"text"`
	IDs    []int    `json:"ids"`
	Tokens []string `json:"tokens"`
}

// runTokenize loads a checkpoint's tokenizer and prints one JSON object per text.
func runTokenize(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("tokenize", flag.ContinueOnError)
	modelDir := fs.String("model", "", "checkpoint folder with tokenizer.json (or vocab.json + merges.txt)")
	noSpecial := fs.Bool("no-special-tokens", false, "leave out BOS/EOS/[CLS]/[SEP] the checkpoint adds")
	texts, err := parseArgs(fs, args, stdout, "worker tokenize --model DIR [--no-special-tokens] TEXT...")
	if err != nil {
		return err
	}
	if *modelDir == "" {
		return errors.New("--model is required")
	}
	if len(texts) == 0 {
		return errors.New("no TEXT given")
	}
	tok, err := tokenizer.LoadDir(*modelDir)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	for _, text := range texts {
		e, err := tok.Encode(text, !*noSpecial)
		if err != nil {
			return fmt.Errorf("text %q: %w", text, err)
		}
		if err := enc.Encode(tokenizeLine{Text: text, IDs: nonNil(e.IDs), Tokens: nonNilStrings(e.Tokens)}); err != nil {
			return err
		}
	}
	return nil
}

// parseInterleaved parses flags that may come before, between or after the
// positional arguments, which it returns in order. "--" ends flag parsing.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := cli.Parse(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

func nonNil(s []int) []int {
	if s == nil {
		return []int{}
	}
	return s
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// parseArgs parses flags mixed with positional arguments (see
// parseInterleaved); for -h it prints the usage line and the flags to stdout.
func parseArgs(fs *flag.FlagSet, args []string, stdout io.Writer, usage string) ([]string, error) {
	fs.SetOutput(io.Discard)
	positional, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fmt.Fprintln(stdout, "usage: "+usage)
		fs.PrintDefaults()
	}
	return positional, err
}
