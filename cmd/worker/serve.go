package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"blipflow/index"
	"blipflow/index/web"
	"blipflow/model/search"
	"blipflow/schemas"
)

func init() {
	commands["serve"] = command{summary: "serve an index: a JSON search API and a search page", run: runServe}
}

// runServe serves an index until the context ends.
func runServe(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	rt := runtimeFlags(fs)
	indexPath := fs.String("index", "", "index written by 'worker index'")
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	modelRef := fs.String("model", "", "checkpoint that embeds the queries (default: the index's model)")
	var captionTables listFlag
	fs.Var(&captionTables, "captions", "results tables (folder, glob or file; repeatable) of a captioning job whose captions to show by key")
	top := fs.Int("max-top", 100, "largest number of results one request may ask for")
	var opts index.SearchOptions
	fs.IntVar(&opts.Probe, "probe", index.DefaultProbe, "lists scanned per query vector")
	fs.IntVar(&opts.Rerank, "rerank", index.DefaultRerank, "candidates re-ranked exactly")
	if _, err := parseArgs(fs, args, stdout, "worker serve --index INDEX [--addr HOST:PORT] [--model DIR] [--captions TABLES]..."); err != nil {
		return err
	}
	if *indexPath == "" {
		return errors.New("--index is required")
	}
	m, err := openIndexed(ctx, *indexPath, *modelRef, rt)
	if err != nil {
		return err
	}
	defer m.Close()
	captions, err := readCaptions(captionTables)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv := &web.Server{Index: m.ix, Embed: m.e, Captions: captions, Options: opts, MaxTop: *top, Log: log}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "serving %d images of %s on http://%s/\n", m.ix.Len(), *indexPath, ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return hs.Shutdown(shut)
	}
}

// readCaptions maps each key of the tables to its first caption.
func readCaptions(args []string) (map[string]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	paths, err := search.ExpandTables(args)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		_, rows, err := schemas.ReadRows(f, st.Size())
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("captions %s: %w", p, err)
		}
		for _, r := range rows {
			if len(r.Captions) > 0 && out[r.Key] == "" {
				out[r.Key] = r.Captions[0]
			}
		}
	}
	return out, nil
}
