package sharding

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"blipflow/storage"
)

// WebDatasetInput lists WebDataset tar shards: a brace pattern of tars
// ("s3://bucket/data/{000..123}.tar", "/data/{train,val}-{00..09}.tar"),
// each of which must exist, or a folder or prefix, whose .tar objects are
// taken. Each tar becomes one shard (see PlanShards).
type WebDatasetInput struct {
	// Pattern is the brace pattern or folder as given.
	Pattern string
	// Open opens the stores holding the tars.
	Open OpenStore
}

// IsWebDataset reports whether location names tars (it ends in ".tar",
// after any brace group).
func IsWebDataset(location string) bool {
	return strings.HasSuffix(strings.ToLower(location), ".tar")
}

// URL implements Input.
func (in WebDatasetInput) URL() string { return in.Pattern }

// Unfiltered implements Unfiltered: the items are tars, not images.
func (WebDatasetInput) Unfiltered() {}

// List implements Input: one item per tar, keyed and sourced by its
// location.
func (in WebDatasetInput) List(ctx context.Context, fn func(Item) error) error {
	if !IsWebDataset(in.Pattern) {
		return in.listFolder(ctx, fn)
	}
	locations, err := ExpandBraces(in.Pattern)
	if err != nil {
		return err
	}
	stores := map[string]storage.Store{}
	for _, location := range locations {
		root, key, err := SplitLocation(location)
		if err != nil {
			return fmt.Errorf("webdataset %s: %w", in.Pattern, err)
		}
		store, ok := stores[root]
		if !ok {
			if store, err = in.Open(ctx, root); err != nil {
				return fmt.Errorf("webdataset %s: %w", in.Pattern, err)
			}
			stores[root] = store
		}
		obj, err := store.Stat(ctx, key)
		if err != nil {
			return fmt.Errorf("webdataset %s: tar %s: %w", in.Pattern, location, err)
		}
		if err := fn(Item{Key: location, Source: location, Size: obj.Size}); err != nil {
			return err
		}
	}
	return nil
}

// listFolder lists the .tar objects under a folder or prefix.
func (in WebDatasetInput) listFolder(ctx context.Context, fn func(Item) error) error {
	store, err := in.Open(ctx, in.Pattern)
	if err != nil {
		return fmt.Errorf("webdataset %s: %w", in.Pattern, err)
	}
	err = store.List(ctx, "", func(obj storage.Object) error {
		if !IsWebDataset(obj.Key) {
			return nil
		}
		location := Resolve(in.Pattern, obj.Key)
		return fn(Item{Key: location, Source: location, Size: obj.Size})
	})
	if err != nil {
		return fmt.Errorf("webdataset %s: %w", in.Pattern, err)
	}
	return nil
}

// PlanShards implements ShardPlanner: one shard per tar, sorted by
// location. A shard's ID is the tar's path below the folder common to all
// tars, without ".tar" and with other characters than letters, digits, '-'
// and '_' replaced by '_', then '-' and a hash of its location:
// "data/000123.tar" gives "000123-<hash>".
func (in WebDatasetInput) PlanShards(items []Item) ([]Shard, error) {
	sorted := slices.Clone(items)
	slices.SortFunc(sorted, func(a, b Item) int { return strings.Compare(a.Source, b.Source) })
	sorted = slices.CompactFunc(sorted, func(a, b Item) bool { return a.Source == b.Source })
	common := commonFolder(sorted)
	shards := make([]Shard, len(sorted))
	for i, item := range sorted {
		name := strings.TrimSuffix(strings.TrimSuffix(item.Source[len(common):], ".tar"), ".TAR")
		name = unsafeIDChars.ReplaceAllString(name, "_")
		if len(name) > 60 {
			name = name[len(name)-60:]
		}
		shards[i] = Shard{
			ID:      name + "-" + KeysHash([]string{item.Source})[:8],
			Archive: item.Source,
			Bytes:   item.Size,
		}
	}
	return shards, nil
}

// unsafeIDChars are the characters a shard id may not hold.
var unsafeIDChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// commonFolder returns the longest prefix ending in '/' that every item's
// source starts with.
func commonFolder(items []Item) string {
	if len(items) == 0 {
		return ""
	}
	prefix := items[0].Source[:strings.LastIndex(items[0].Source, "/")+1]
	for _, item := range items[1:] {
		for !strings.HasPrefix(item.Source, prefix) {
			prefix = prefix[:strings.LastIndex(strings.TrimSuffix(prefix, "/"), "/")+1]
		}
	}
	return prefix
}

// DefaultMaxExtraBytes caps the text of one carried-through tar member.
const DefaultMaxExtraBytes = 64 << 10

// DefaultMaxMemberBytes caps an image member, as the size cap of URL
// fetches does (20 MB): a larger one is an error row, never read.
const DefaultMaxMemberBytes = 20_000_000

// Sample is one WebDataset sample: the tar members that share a key.
type Sample struct {
	// Key is the members' path without extensions ("dir/000123" for
	// "dir/000123.jpg").
	Key string
	// ImageMember is the name of the first member with an image extension
	// ("" when the sample has none); Image is its content unless skipped.
	ImageMember string
	Image       []byte
	// Err, when set, says why the image member cannot be read: over the
	// member size cap, or cut short by the end of a truncated tar. The
	// sample's row carries it.
	Err string
	// Extra maps the extension of each other text member ("txt", "json",
	// "cls") to its content, cut to MaxExtraBytes at a character boundary.
	// Binary members and further images are left out.
	Extra map[string]string
}

// TarOptions tune ReadWebDataset.
type TarOptions struct {
	// ImageExtensions are the image member extensions (nil:
	// DefaultExtensions), compared case-insensitively with the member's
	// last extension.
	ImageExtensions []string
	// MaxExtraBytes caps each Extra value (0: DefaultMaxExtraBytes).
	MaxExtraBytes int
	// MaxMemberBytes caps an image member (0: DefaultMaxMemberBytes); the
	// header's size is checked before anything is read, so a crafted
	// (sparse) member never costs more than its header.
	MaxMemberBytes int64
	// SkipImages leaves Sample.Image nil (the bytes are read and dropped,
	// so that truncation is found as when they are kept); SkipExtras
	// leaves Sample.Extra nil.
	SkipImages, SkipExtras bool
}

// ErrTruncated reports a tar that ends before its end marker: every
// complete sample was delivered, and a member cut short has its Err set.
var ErrTruncated = errors.New("tar is truncated")

// SplitMemberName splits a tar member name as WebDataset does: the key is
// the path up to the first '.' of the base name, the extension the rest
// ("a/b.seg.png" gives "a/b" and "seg.png"). ok is false for names without
// an extension.
func SplitMemberName(name string) (key, ext string, ok bool) {
	dir, base := path.Split(name)
	stem, ext, found := strings.Cut(base, ".")
	if !found || stem == "" || ext == "" {
		return "", "", false
	}
	return dir + stem, ext, true
}

// ReadWebDataset streams a tar and calls fn for each sample, in tar order,
// holding one sample's members at a time. Members of a sample must be
// adjacent (as WebDataset writes them): a key that comes back after
// another is an error, since it would give the sample twice. Directories,
// other non-file members, names starting with '.' and names without an
// extension are skipped. A tar that ends early delivers what it holds and
// returns ErrTruncated.
func ReadWebDataset(r io.Reader, opts TarOptions, fn func(Sample) error) error {
	if opts.ImageExtensions == nil {
		opts.ImageExtensions = DefaultExtensions
	}
	if opts.MaxExtraBytes <= 0 {
		opts.MaxExtraBytes = DefaultMaxExtraBytes
	}
	if opts.MaxMemberBytes <= 0 {
		opts.MaxMemberBytes = DefaultMaxMemberBytes
	}
	tr := tar.NewReader(r)
	seen := map[string]bool{}
	var cur *Sample
	flush := func() error {
		if cur == nil {
			return nil
		}
		s := *cur
		cur = nil
		return fn(s)
	}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return flush()
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			if ferr := flush(); ferr != nil {
				return ferr
			}
			return fmt.Errorf("%w: it ends inside a member header", ErrTruncated)
		}
		if err != nil {
			return fmt.Errorf("tar: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg || strings.HasPrefix(path.Base(hdr.Name), ".") {
			continue
		}
		key, ext, ok := SplitMemberName(hdr.Name)
		if !ok {
			continue
		}
		if cur == nil || cur.Key != key {
			if err := flush(); err != nil {
				return err
			}
			if seen[key] {
				return fmt.Errorf("tar: member %s: sample %q appears again after other samples (members of a sample must be adjacent)", hdr.Name, key)
			}
			seen[key] = true
			cur = &Sample{Key: key}
		}
		if err := readMember(tr, hdr, ext, cur, opts); err != nil {
			if errors.Is(err, ErrTruncated) {
				if ferr := flush(); ferr != nil {
					return ferr
				}
			}
			return err
		}
	}
}

// readMember adds one member to its sample.
func readMember(tr *tar.Reader, hdr *tar.Header, ext string, s *Sample, opts TarOptions) error {
	last := strings.ToLower(ext[strings.LastIndex(ext, ".")+1:])
	if slices.Contains(opts.ImageExtensions, last) {
		if s.ImageMember != "" {
			return nil
		}
		s.ImageMember = hdr.Name
		if hdr.Size > opts.MaxMemberBytes {
			s.Err = fmt.Sprintf("tar member %s is %d bytes, over the %d-byte member limit", hdr.Name, hdr.Size, opts.MaxMemberBytes)
			return nil
		}
		var err error
		if opts.SkipImages {
			_, err = io.CopyN(io.Discard, tr, hdr.Size)
		} else {
			data := make([]byte, hdr.Size)
			_, err = io.ReadFull(tr, data)
			s.Image = data
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			s.Image = nil
			s.Err = fmt.Sprintf("tar member %s is truncated: the tar ends inside it", hdr.Name)
			return fmt.Errorf("%w: it ends inside member %s", ErrTruncated, hdr.Name)
		}
		if err != nil {
			return fmt.Errorf("tar: member %s: %w", hdr.Name, err)
		}
		return nil
	}
	if opts.SkipExtras {
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(tr, int64(opts.MaxExtraBytes)+utf8.UTFMax))
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: it ends inside member %s", ErrTruncated, hdr.Name)
	}
	if err != nil {
		return fmt.Errorf("tar: member %s: %w", hdr.Name, err)
	}
	if len(data) > opts.MaxExtraBytes {
		cut := opts.MaxExtraBytes
		for cut > 0 && !utf8.RuneStart(data[cut]) {
			cut--
		}
		data = data[:cut]
	}
	if !utf8.Valid(data) {
		return nil
	}
	if s.Extra == nil {
		s.Extra = map[string]string{}
	}
	s.Extra[ext] = string(data)
	return nil
}

// ErrNoImageMember reports a WebDataset sample without an image member.
var ErrNoImageMember = errors.New("sample has no image member")

// MemberError is the reason an image member cannot be read (Sample.Err).
type MemberError string

func (e MemberError) Error() string { return string(e) }

// TarMember returns the image member named member from a WebDataset tar
// streamed from r (the "tar#member" source of a row), reading up to it. A
// sample key in place of the member names a sample without an image:
// ErrNoImageMember; a member over the size cap or cut short is a
// MemberError.
func TarMember(r io.Reader, member string) ([]byte, error) {
	var image []byte
	var memberErr string
	imageless, found := false, false
	stop := errors.New("found")
	err := ReadWebDataset(r, TarOptions{SkipExtras: true}, func(s Sample) error {
		switch {
		case s.ImageMember != "" && s.ImageMember == member:
			image, memberErr, found = s.Image, s.Err, true
			return stop
		case s.ImageMember == "" && s.Key == member:
			imageless, found = true, true
			return stop
		}
		return nil
	})
	switch {
	case memberErr != "":
		return nil, MemberError(memberErr)
	case imageless:
		return nil, ErrNoImageMember
	case found:
		return image, nil
	case err == nil || errors.Is(err, ErrTruncated):
		return nil, fmt.Errorf("tar has no member %s", member)
	}
	return nil, err
}
