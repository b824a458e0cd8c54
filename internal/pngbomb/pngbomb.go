// Package pngbomb writes valid PNG files of any size, all black, streaming
// the rows through the compressor so that a 1.4 GB image is written as
// about 1.4 MB without ever being held in memory. Tests use it to check
// that hostile images are refused or bounded.
package pngbomb

import (
	"bufio"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// Depth16RGBA and the other colour settings are PNG (bit depth, colour
// type) pairs.
var (
	Depth16RGBA = Format{Depth: 16, ColorType: 6, Channels: 4}
	Depth8RGBA  = Format{Depth: 8, ColorType: 6, Channels: 4}
	Depth8RGB   = Format{Depth: 8, ColorType: 2, Channels: 3}
)

// Format is a PNG pixel layout.
type Format struct {
	Depth     int // bits per sample: 8 or 16
	ColorType int // 2: RGB, 6: RGBA
	Channels  int
}

// Write writes a width×height black PNG of format f to w.
func Write(w io.Writer, width, height int, f Format) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	if _, err := bw.WriteString("\x89PNG\r\n\x1a\n"); err != nil {
		return err
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(width))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(height))
	ihdr[8], ihdr[9] = byte(f.Depth), byte(f.ColorType)
	if err := chunk(bw, "IHDR", ihdr); err != nil {
		return err
	}
	idat := &chunkWriter{w: bw, buf: make([]byte, 0, 1<<16)}
	zw, err := zlib.NewWriterLevel(idat, zlib.DefaultCompression)
	if err != nil {
		return err
	}
	row := make([]byte, 1+width*f.Channels*f.Depth/8) // filter 0, zero samples
	for range height {
		if _, err := zw.Write(row); err != nil {
			return fmt.Errorf("pngbomb: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := idat.flush(); err != nil {
		return err
	}
	if err := chunk(bw, "IEND", nil); err != nil {
		return err
	}
	return bw.Flush()
}

func chunk(w io.Writer, kind string, data []byte) error {
	var head [8]byte
	binary.BigEndian.PutUint32(head[:4], uint32(len(data)))
	copy(head[4:], kind)
	crc := crc32.NewIEEE()
	crc.Write(head[4:])
	crc.Write(data)
	var tail [4]byte
	binary.BigEndian.PutUint32(tail[:], crc.Sum32())
	for _, b := range [][]byte{head[:], data, tail[:]} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// chunkWriter cuts the compressed stream into IDAT chunks.
type chunkWriter struct {
	w   io.Writer
	buf []byte
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(cap(c.buf)-len(c.buf), len(p))
		c.buf = append(c.buf, p[:k]...)
		p = p[k:]
		if len(c.buf) == cap(c.buf) {
			if err := c.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (c *chunkWriter) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	err := chunk(c.w, "IDAT", c.buf)
	c.buf = c.buf[:0]
	return err
}

// Header returns a PNG that is only a signature, an IHDR of the given size
// and format, and IEND: enough for a header check, not for decoding.
func Header(width, height int, f Format) []byte {
	var b bytesWriter
	_, _ = b.Write([]byte("\x89PNG\r\n\x1a\n"))
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(width))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(height))
	ihdr[8], ihdr[9] = byte(f.Depth), byte(f.ColorType)
	_ = chunk(&b, "IHDR", ihdr)
	_ = chunk(&b, "IEND", nil)
	return b
}

type bytesWriter []byte

func (b *bytesWriter) Write(p []byte) (int, error) { *b = append(*b, p...); return len(p), nil }
