package ipfrag

import (
	"testing"
)

// fuzzConfig is small so that the caps are reached.
var fuzzConfig = Config{MaxDatagrams: 4, MaxBytes: 2048, Timeout: 20, MaxFragments: 8}

// fuzzScript runs a fragment script. Each record is a control byte, a length byte and that many
// bytes. Control bit 0 set: the bytes are a whole packet, given as is. Otherwise they are built
// into a fragment: bits 1-2 the identification, bit 7 the more-fragments flag, the first byte
// the offset in 8-byte units, the rest the payload. Bits 3-6 advance the clock.
func fuzzScript(t *testing.T, data []byte, six bool) {
	r := New(fuzzConfig, func(in Incomplete) {
		if in.Bytes > 65535 || len(in.Prefix) > in.Bytes {
			t.Fatalf("got an incomplete datagram with %d bytes and a %d-byte prefix", in.Bytes, len(in.Prefix))
		}
	})
	var ts int64
	for len(data) >= 2 {
		ctl := data[0]
		n := min(int(data[1]), len(data)-2)
		chunk := data[2 : 2+n]
		data = data[2+n:]
		ts += int64(ctl>>3) & 0xf
		var p []byte
		switch {
		case ctl&1 == 1:
			p = chunk
		case len(chunk) == 0:
			continue
		case six:
			p = v6(src6, dst6, uint32(ctl>>1&3), int(chunk[0])*8, ctl&0x80 != 0, chunk[1:])
		default:
			p = v4(srcA, dstA, uint16(ctl>>1&3), int(chunk[0])*8, ctl&0x80 != 0, chunk[1:])
		}
		var d Datagram
		var ok bool
		if six {
			d, ok, _ = r.AddIPv6(ts, p)
		} else {
			d, ok, _ = r.AddIPv4(ts, p)
		}
		if ok && len(d.Payload) > 65535 {
			t.Fatalf("got a %d-byte datagram", len(d.Payload))
		}
		if st := r.Stats(); st.Held > fuzzConfig.MaxDatagrams || st.BytesHeld > fuzzConfig.MaxBytes || st.BytesHeld < 0 {
			t.Fatalf("got %d held, %d bytes; caps %d, %d", st.Held, st.BytesHeld, fuzzConfig.MaxDatagrams, fuzzConfig.MaxBytes)
		}
	}
	r.Flush()
	if st := r.Stats(); st.Held != 0 || st.BytesHeld != 0 {
		t.Fatalf("after Flush: got %d held, %d bytes", st.Held, st.BytesHeld)
	}
}

func FuzzIPv4Fragments(f *testing.F) {
	pkts := readPcap(f, "DNS-OARC_dnscap__frags.pcap")
	var seed []byte
	for i, p := range pkts {
		if i == 40 {
			break
		}
		seed = append(seed, 1|8, byte(len(p.data)))
		seed = append(seed, p.data...)
	}
	f.Add(seed)
	f.Add([]byte{0x80, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 3, 1, 9, 9})
	f.Fuzz(func(t *testing.T, data []byte) { fuzzScript(t, data, false) })
}

func FuzzIPv6Fragments(f *testing.F) {
	// The frags.pcap fragments, carried over IPv6: same offsets, flags and payloads.
	pkts := readPcap(f, "DNS-OARC_dnscap__frags.pcap")
	var seed []byte
	for i, p := range pkts {
		if i == 40 {
			break
		}
		fo := int(p.data[6])<<8 | int(p.data[7])
		ctl := byte(p.data[5]&3) << 1
		if fo&0x2000 != 0 {
			ctl |= 0x80
		}
		payload := p.data[20:]
		seed = append(seed, ctl|8, byte(1+len(payload)), byte(fo&0x1fff))
		seed = append(seed, payload...)
	}
	f.Add(seed)
	f.Add([]byte{0x80, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 3, 1, 9, 9})
	f.Fuzz(func(t *testing.T, data []byte) { fuzzScript(t, data, true) })
}
