package chhttp

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"strings"

	"github.com/ClickHouse/ch-go/compress"
	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// decodeBody undoes the request's Content-Encoding (what clickhouse-go sends with gzip, deflate
// or br compression; zstd and lz4 for curl users) and then, with decompress=1, ClickHouse's
// own compressed frames (what clickhouse-go sends with LZ4 or ZSTD compression).
func decodeBody(body io.Reader, contentEncoding string, framed bool) (io.Reader, func(), error) {
	closeFn := func() {}
	switch strings.ToLower(strings.TrimSpace(contentEncoding)) {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, nil, newException(codeCannotDecompress, "cannot read the gzip request body: %v", err)
		}
		body, closeFn = zr, func() { zr.Close() }
	case "deflate":
		zr, err := zlib.NewReader(body)
		if err != nil {
			return nil, nil, newException(codeCannotDecompress, "cannot read the deflate (zlib) request body: %v", err)
		}
		body, closeFn = zr, func() { zr.Close() }
	case "br":
		body = brotli.NewReader(body)
	case "zstd":
		zr, err := zstd.NewReader(body)
		if err != nil {
			return nil, nil, newException(codeCannotDecompress, "cannot read the zstd request body: %v", err)
		}
		body, closeFn = zr, zr.Close
	case "lz4":
		body = lz4.NewReader(body)
	default:
		return nil, nil, newException(codeNotImplemented, "Content-Encoding %q is not supported (use gzip, deflate, br, zstd or lz4)", contentEncoding)
	}
	if framed {
		body = &frameReader{r: compress.NewReader(body)}
	}
	return body, closeFn, nil
}

// frameReader marks errors from ClickHouse's compressed frames (bad checksum, bad method) as
// CANNOT_DECOMPRESS.
type frameReader struct{ r io.Reader }

func (f *frameReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return n, io.EOF // the end of the last frame
	}
	if err != nil {
		err = newException(codeCannotDecompress, "cannot decompress the request body (ClickHouse compressed frames, decompress=1): %v", err)
	}
	return n, err
}

// frameSize is how much uncompressed output goes into one ClickHouse compressed frame (the
// server's max_compress_block_size).
const frameSize = 1 << 20

// compressFrames writes data as ClickHouse compressed frames (compress=1).
func compressFrames(data []byte, method compress.Method) ([]byte, error) {
	w := compress.NewWriter(compress.LevelZero, method)
	var out []byte
	for len(data) > 0 {
		n := min(len(data), frameSize)
		if err := w.Compress(data[:n]); err != nil {
			return nil, err
		}
		out = append(out, w.Data...)
		data = data[n:]
	}
	return out, nil
}

// compressHTTP applies the response Content-Encoding the client accepts (gzip, deflate or zstd),
// as ClickHouse does when enable_http_compression=1. It returns the encoding used, "" for none.
func compressHTTP(data []byte, acceptEncoding string) ([]byte, string, error) {
	var buf bytes.Buffer
	for _, part := range strings.Split(acceptEncoding, ",") {
		enc, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		var w io.WriteCloser
		switch strings.ToLower(enc) {
		case "gzip":
			w = gzip.NewWriter(&buf)
		case "deflate":
			w = zlib.NewWriter(&buf)
		case "zstd":
			zw, err := zstd.NewWriter(&buf)
			if err != nil {
				return nil, "", err
			}
			w = zw
		default:
			continue
		}
		if _, err := w.Write(data); err != nil {
			return nil, "", err
		}
		if err := w.Close(); err != nil {
			return nil, "", err
		}
		return buf.Bytes(), strings.ToLower(enc), nil
	}
	return data, "", nil
}
