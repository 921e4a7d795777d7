package dnsrow

import (
	"encoding/binary"

	"github.com/ClickHouse/ch-go/proto"
)

// lowCardinality is a LowCardinality(String) column that assigns dictionary keys as rows are
// appended. ch-go's ColLowCardinality keeps every row's string and builds the dictionary with a
// map lookup per row at encode time; the columns here (host, interface, source, direction,
// transport, malformed reason) repeat the same value row after row, so a comparison with the
// previous value replaces the map lookup almost always. Written as ch-go writes it: key
// serialization version 1 in the state prefix, then per block the flags (additional keys, update
// dictionary) with the key width, the dictionary as a String column, and the keys.
type lowCardinality struct {
	dict    []string
	index   map[string]uint32
	keys    []uint32
	last    string
	lastKey uint32
	hasLast bool
}

func newLowCardinality() *lowCardinality {
	return &lowCardinality{index: make(map[string]uint32)}
}

// Append adds a row holding v.
func (c *lowCardinality) Append(v string) {
	if c.hasLast && v == c.last {
		c.keys = append(c.keys, c.lastKey)
		return
	}
	k, ok := c.index[v]
	if !ok {
		k = uint32(len(c.dict))
		c.dict = append(c.dict, v)
		c.index[v] = k
	}
	c.last, c.lastKey, c.hasLast = c.dict[k], k, true
	c.keys = append(c.keys, k)
}

// AppendBytes adds a row holding string(v), allocating only for a value not seen in this block.
func (c *lowCardinality) AppendBytes(v []byte) {
	if c.hasLast && string(v) == c.last {
		c.keys = append(c.keys, c.lastKey)
		return
	}
	k, ok := c.index[string(v)]
	if !ok {
		k = uint32(len(c.dict))
		s := string(v)
		c.dict = append(c.dict, s)
		c.index[s] = k
	}
	c.last, c.lastKey, c.hasLast = c.dict[k], k, true
	c.keys = append(c.keys, k)
}

// Row returns the value of row i.
func (c *lowCardinality) Row(i int) string { return c.dict[c.keys[i]] }

func (c *lowCardinality) Type() proto.ColumnType {
	return proto.ColumnTypeLowCardinality.Sub(proto.ColumnTypeString)
}

func (c *lowCardinality) Rows() int { return len(c.keys) }

func (c *lowCardinality) Reset() {
	c.dict = c.dict[:0]
	clear(c.index)
	c.keys = c.keys[:0]
	c.hasLast = false
}

// EncodeState writes the key serialization version (shared dictionaries with additional keys).
func (c *lowCardinality) EncodeState(b *proto.Buffer) { b.PutInt64(1) }

const (
	lcHasAdditionalKeys    = 1 << 9
	lcNeedUpdateDictionary = 1 << 10
)

func (c *lowCardinality) EncodeColumn(b *proto.Buffer) {
	if len(c.keys) == 0 {
		return
	}
	var width int
	var keyType int64
	switch n := len(c.dict); {
	case n <= 1<<8:
		width, keyType = 1, int64(proto.KeyUInt8)
	case n <= 1<<16:
		width, keyType = 2, int64(proto.KeyUInt16)
	default:
		width, keyType = 4, int64(proto.KeyUInt32)
	}
	b.PutInt64(lcHasAdditionalKeys | lcNeedUpdateDictionary | keyType)
	b.PutInt64(int64(len(c.dict)))
	for _, s := range c.dict {
		b.PutString(s)
	}
	b.PutInt64(int64(len(c.keys)))
	start := len(b.Buf)
	b.Buf = append(b.Buf, make([]byte, width*len(c.keys))...)
	out := b.Buf[start:]
	switch width {
	case 1:
		for i, k := range c.keys {
			out[i] = byte(k)
		}
	case 2:
		for i, k := range c.keys {
			binary.LittleEndian.PutUint16(out[2*i:], uint16(k))
		}
	default:
		for i, k := range c.keys {
			binary.LittleEndian.PutUint32(out[4*i:], k)
		}
	}
}

// WriteColumn implements proto.ColInput for ch-go's streaming writer.
func (c *lowCardinality) WriteColumn(w *proto.Writer) {
	w.ChainBuffer(c.EncodeColumn)
}
