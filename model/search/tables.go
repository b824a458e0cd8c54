package search

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"blipflow/schemas"
)

// ExpandTables turns arguments naming tables into table paths: a folder
// stands for every .parquet file under it (recursively, skipping hidden
// folders such as a job's .blipflow state), a pattern with *, ? or [ for
// the files it matches, anything else for itself. The result is sorted
// within each argument and free of repeats; an argument that names
// nothing is an error.
func ExpandTables(args []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, arg := range args {
		var found []string
		st, err := os.Stat(arg)
		switch {
		case err == nil && st.IsDir():
			err := filepath.WalkDir(arg, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.IsDir() && p != arg && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				if !d.IsDir() && strings.HasSuffix(d.Name(), ".parquet") {
					found = append(found, p)
				}
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("tables under %s: %w", arg, err)
			}
			if len(found) == 0 {
				return nil, fmt.Errorf("folder %s holds no .parquet tables", arg)
			}
		case err == nil:
			found = []string{arg}
		case strings.ContainsAny(arg, "*?["):
			found, err = filepath.Glob(arg)
			if err != nil {
				return nil, fmt.Errorf("pattern %q: %w", arg, err)
			}
			if len(found) == 0 {
				return nil, fmt.Errorf("pattern %q matches no file", arg)
			}
		default:
			return nil, fmt.Errorf("table %s: %w", arg, err)
		}
		slices.Sort(found)
		for _, p := range found {
			add(p)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no table given")
	}
	return out, nil
}

// OpenTable is one table opened for vector scans.
type OpenTable struct {
	Path  string
	File  *os.File
	Table *schemas.VectorTable
}

// OpenTables opens every table for vector scans, checking each one's
// metadata with accept (which may refuse it with an error) before any is
// scanned. Close the tables with CloseTables.
func OpenTables(paths []string, accept func(path string, m schemas.Meta) error) ([]OpenTable, error) {
	var out []OpenTable
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			CloseTables(out)
			return nil, err
		}
		st, err := f.Stat()
		if err == nil {
			var t *schemas.VectorTable
			t, err = schemas.OpenVectors(f, st.Size())
			if err == nil {
				out = append(out, OpenTable{Path: p, File: f, Table: t})
				if accept != nil {
					err = accept(p, t.Meta())
				}
				if err != nil {
					CloseTables(out)
					return nil, err
				}
				continue
			}
		}
		f.Close()
		CloseTables(out)
		return nil, fmt.Errorf("table %s: %w", p, err)
	}
	return out, nil
}

// CloseTables closes tables opened by OpenTables.
func CloseTables(ts []OpenTable) {
	for _, t := range ts {
		t.Table.Close()
		t.File.Close()
	}
}

// Tables ranks the rows of several tables (see ExpandTables and accept in
// OpenTables) for each query exactly, scanning row groups on GOMAXPROCS
// goroutines. A hit's Row counts rows across the tables in the order given
// (rows without an embedding included), which breaks ties.
func Tables(paths []string, queries [][]float32, k int, accept func(path string, m schemas.Meta) error) ([][]Hit, error) {
	if _, err := NewSearcher(queries, k); err != nil {
		return nil, err
	}
	tables, err := OpenTables(paths, accept)
	if err != nil {
		return nil, err
	}
	defer CloseTables(tables)
	type job struct {
		table, group int
		first        int64 // rows of the tables before this one
	}
	var jobs []job
	first := int64(0)
	for ti, t := range tables {
		if d := t.Table.Meta().EmbeddingDim; d != len(queries[0]) {
			return nil, fmt.Errorf("search: table %s has vectors of %d values (%s), the queries %d",
				t.Path, d, schemas.MetaEmbeddingDim, len(queries[0]))
		}
		for g := range t.Table.RowGroups() {
			jobs = append(jobs, job{ti, g, first})
		}
		first += t.Table.NumRows()
	}
	workers := min(runtime.GOMAXPROCS(0), max(1, len(jobs)))
	searchers := make([]*Searcher, workers)
	errs := make([]error, workers)
	next := make(chan job)
	var wg sync.WaitGroup
	for w := range workers {
		searchers[w], _ = NewSearcher(queries, k)
		wg.Go(func() {
			s := searchers[w]
			for j := range next {
				if errs[w] != nil {
					continue
				}
				t := tables[j.table]
				err := t.Table.ScanRowGroup(j.group, false, func(b schemas.VectorBatch) error {
					return s.AddFlat(b.Keys, b.Rows, j.first, b.Values)
				})
				if err != nil {
					errs[w] = fmt.Errorf("search %s: %w", t.Path, err)
				}
			}
		})
	}
	for _, j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := make([][]Hit, len(queries))
	for qi := range queries {
		top := NewTopK(k)
		for _, s := range searchers {
			for _, h := range s.tops[qi].Hits() {
				top.Offer(h)
			}
		}
		out[qi] = top.Hits()
	}
	return out, nil
}

// AddFlat scores rows given end to end in values (each len(values)/len(keys)
// floats, a multiple of the query length) against every query; rows[i] +
// first is row i's position for ranking ties.
func (s *Searcher) AddFlat(keys []string, rows []int64, first int64, values []float32) error {
	if len(keys) == 0 {
		return nil
	}
	w := len(values) / len(keys)
	if w == 0 || w*len(keys) != len(values) || w%s.dim != 0 || len(rows) != len(keys) {
		return fmt.Errorf("search: %d values for %d rows, not whole rows of vectors of %d", len(values), len(keys), s.dim)
	}
	for i, key := range keys {
		row := values[i*w : (i+1)*w]
		for qi, q := range s.queries {
			s.tops[qi].Offer(Hit{Key: key, Score: MaxDot(row, q), Row: first + rows[i]})
		}
	}
	s.rows += int64(len(keys))
	return nil
}
