package chhttp

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// reencodeNative rewrites Native-format blocks written at protocol revision 0 (what the engine
// writes) for a client at revision: from 51903 on each block starts with block info, and from
// 54454 on each column type is followed by a custom-serialization flag. The blocks are decoded
// and encoded with clickhouse-go's own codec, so every type the driver reads passes through.
func reencodeNative(data []byte, revision uint64, sc *column.ServerContext) ([]byte, error) {
	if revision == 0 || len(data) == 0 {
		return data, nil
	}
	r := chproto.NewReader(bytes.NewReader(data))
	var buf chproto.Buffer
	for n := 0; ; n++ {
		b := proto.Block{ServerContext: sc}
		if err := b.Decode(r, 0); err != nil {
			if errors.Is(err, io.EOF) && b.Columns == nil {
				break
			}
			return nil, fmt.Errorf("cannot decode Native block %d of the result: %w", n, err)
		}
		if err := b.Encode(&buf, revision); err != nil {
			return nil, fmt.Errorf("cannot encode Native block %d of the result at revision %d: %w", n, revision, err)
		}
	}
	return buf.Buf, nil
}
