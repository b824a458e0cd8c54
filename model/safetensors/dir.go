package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// IndexFile is the name of the index of a sharded checkpoint.
const IndexFile = "model.safetensors.index.json"

// Dir is a checkpoint folder: one model.safetensors or several shards named by
// model.safetensors.index.json. It looks tensors up across the shards.
type Dir struct {
	path   string
	files  []*File
	byName map[string]*File
}

// OpenDir opens the safetensors weights of a checkpoint folder.
func OpenDir(dir string) (*Dir, error) {
	d := &Dir{path: dir, byName: map[string]*File{}}
	index := filepath.Join(dir, IndexFile)
	raw, err := os.ReadFile(index)
	switch {
	case err == nil:
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(raw, &idx); err != nil {
			return nil, fmt.Errorf("safetensors %s: corrupt index: %w", index, err)
		}
		if len(idx.WeightMap) == 0 {
			return nil, fmt.Errorf("safetensors %s: index has no weight_map", index)
		}
		shards := map[string]*File{}
		names := make([]string, 0, len(idx.WeightMap))
		for name := range idx.WeightMap {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			shard := idx.WeightMap[name]
			f, ok := shards[shard]
			if !ok {
				if f, err = Open(filepath.Join(dir, filepath.Base(shard))); err != nil {
					d.Close()
					return nil, fmt.Errorf("shard of %s: %w", index, err)
				}
				shards[shard] = f
				d.files = append(d.files, f)
			}
			if _, ok := f.tensors[name]; !ok {
				d.Close()
				return nil, fmt.Errorf("safetensors %s: index names tensor %q in %s, which does not hold it", index, name, shard)
			}
			d.byName[name] = f
		}
		return d, nil
	case errors.Is(err, os.ErrNotExist):
		f, err := Open(filepath.Join(dir, "model.safetensors"))
		if err != nil {
			return nil, err
		}
		d.files = []*File{f}
		for name := range f.tensors {
			d.byName[name] = f
		}
		return d, nil
	default:
		return nil, fmt.Errorf("safetensors: %w", err)
	}
}

// Path returns the folder.
func (d *Dir) Path() string { return d.path }

// Has reports whether the checkpoint holds the named tensor.
func (d *Dir) Has(name string) bool {
	_, ok := d.byName[name]
	return ok
}

// Info describes the named tensor.
func (d *Dir) Info(name string) (Info, bool) {
	f, ok := d.byName[name]
	if !ok {
		return Info{}, false
	}
	return f.Info(name)
}

// Names returns every tensor name, sorted.
func (d *Dir) Names() []string {
	names := make([]string, 0, len(d.byName))
	for n := range d.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Float32 returns the named tensor as float32 (see File.Float32).
func (d *Dir) Float32(name string) ([]float32, []int, error) {
	f, ok := d.byName[name]
	if !ok {
		return nil, nil, fmt.Errorf("checkpoint %s: tensor %q: %w", d.path, name, ErrNotFound)
	}
	return f.Float32(name)
}

// Close unmaps every shard.
func (d *Dir) Close() error {
	var errs []error
	for _, f := range d.files {
		errs = append(errs, f.Close())
	}
	d.files, d.byName = nil, nil
	return errors.Join(errs...)
}

// BF16 returns the named BF16 tensor's raw values (see File.BF16).
func (d *Dir) BF16(name string) ([]uint16, []int, error) {
	f, ok := d.byName[name]
	if !ok {
		return nil, nil, fmt.Errorf("checkpoint %s: tensor %q: %w", d.path, name, ErrNotFound)
	}
	return f.BF16(name)
}

// F16 returns the named F16 tensor's raw values (see File.F16).
func (d *Dir) F16(name string) ([]uint16, []int, error) {
	f, ok := d.byName[name]
	if !ok {
		return nil, nil, fmt.Errorf("checkpoint %s: tensor %q: %w", d.path, name, ErrNotFound)
	}
	return f.F16(name)
}

// Release drops the named tensor's pages from memory (see File.Release).
func (d *Dir) Release(name string) error {
	if f, ok := d.byName[name]; ok {
		return f.Release(name)
	}
	return nil
}

// StoredDType returns the named tensor's dtype as stored ("" when absent).
func (d *Dir) StoredDType(name string) string {
	i, ok := d.Info(name)
	if !ok {
		return ""
	}
	return string(i.DType)
}
