package sink

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// A spool file is a magic line, a JSON header line, then the Native block:
//
//	DNSLOSS-SPOOL 1
//	{"table":"dns_messages","rows":123,"iface":"eth0","seq":7,"token":"..."}
//	<Native bytes>
//
// named NNNNNNNNNNNNNNNNNNNN.block after its sequence number, written to a temporary name and
// renamed, so a crash leaves either the whole file or a .tmp file that the next run deletes.
const spoolMagic = "DNSLOSS-SPOOL 1\n"

type spoolHeader struct {
	Table string `json:"table"`
	Rows  int    `json:"rows"`
	Iface string `json:"iface"`
	Seq   uint64 `json:"seq"`
	Token string `json:"token"`
	CRC   uint32 `json:"crc32c"` // of the Native bytes: a damaged file is set aside, never decoded
}

// spool is the spool directory. Its methods that touch files change no sink state, so the spool
// writer calls them without the sink's lock; bytes is the sink's to keep (under its lock).
type spool struct {
	dir   string
	bytes int64 // of the queued blocks' files, and of those being written
	log   *slog.Logger
	// hold, when set (by tests, before the first Submit), is called before each file is
	// written: a test stands for a disk that does not keep up by blocking in it.
	hold func(*Block)
}

func blockName(seq uint64) string { return fmt.Sprintf("%020d.block", seq) }

// openSpool creates dir if needed, deletes unfinished writes, and returns the spooled blocks
// (without their data) in sequence order.
func openSpool(dir string, log *slog.Logger) (*spool, []*Block, error) {
	if dir == "" {
		return nil, nil, errors.New("sink: no spool directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("cannot create spool directory %q: %w", dir, err)
	}
	sp := &spool{dir: dir, log: log}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read spool directory %q: %w", dir, err)
	}
	var blocks []*Block
	for _, e := range ents {
		name := e.Name()
		path := filepath.Join(dir, name)
		if strings.HasPrefix(name, ".tmp-") {
			os.Remove(path)
			continue
		}
		if e.IsDir() || !strings.HasSuffix(name, ".block") {
			continue
		}
		b, err := sp.readHeader(path)
		if err != nil {
			log.Error("unreadable spool file; moving it to rejected/", "file", path, "err", err)
			sp.moveRejected(path)
			continue
		}
		blocks = append(blocks, b)
		sp.bytes += b.size
	}
	sortBlocks(blocks)
	return sp, blocks, nil
}

func (sp *spool) path(b *Block) string { return filepath.Join(sp.dir, blockName(b.Seq)) }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func header(b *Block) spoolHeader {
	return spoolHeader{Table: b.Table, Rows: b.Rows, Iface: b.Iface, Seq: b.Seq, Token: b.Token, CRC: crc32.Checksum(b.Native, castagnoli)}
}

// headerLine returns b's JSON header line, without its newline.
func headerLine(b *Block) ([]byte, error) {
	h, err := json.Marshal(header(b))
	if err != nil {
		return nil, fmt.Errorf("cannot encode the spool header of block %d: %w", b.Seq, err)
	}
	return h, nil
}

// fileSize is the size of b's spool file with header line h.
func fileSize(b *Block, h []byte) int64 {
	return int64(len(spoolMagic) + len(h) + 1 + len(b.Native))
}

// writeFile writes b's spool file, with header line h, and syncs it.
func (sp *spool) writeFile(b *Block, h []byte) error {
	if sp.hold != nil {
		sp.hold(b)
	}
	tmp := filepath.Join(sp.dir, ".tmp-"+blockName(b.Seq))
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("cannot create spool file: %w", err)
	}
	w := bufio.NewWriterSize(f, 64<<10)
	w.WriteString(spoolMagic)
	w.Write(h)
	w.WriteByte('\n')
	w.Write(b.Native)
	err = w.Flush()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, sp.path(b))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot write spool file %q: %w", sp.path(b), err)
	}
	return nil
}

// removeFile deletes b's spool file.
func (sp *spool) removeFile(b *Block) {
	if err := os.Remove(sp.path(b)); err != nil && !errors.Is(err, os.ErrNotExist) {
		sp.log.Error("cannot remove spool file", "file", sp.path(b), "err", err)
	}
}

func (sp *spool) readHeader(path string) (*Block, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(f, 4096)
	h, _, err := readHeader(r)
	if err != nil {
		return nil, err
	}
	if want := blockName(h.Seq); filepath.Base(path) != want {
		return nil, fmt.Errorf("header says sequence %d, file name says otherwise", h.Seq)
	}
	return &Block{Table: h.Table, Rows: h.Rows, Iface: h.Iface, Seq: h.Seq, Token: h.Token, onDisk: true, size: st.Size()}, nil
}

func readHeader(r *bufio.Reader) (spoolHeader, int, error) {
	var h spoolHeader
	magic, err := r.ReadString('\n')
	if err != nil || magic != spoolMagic {
		return h, 0, errors.New("not a dnsloss spool file")
	}
	line, err := r.ReadBytes('\n')
	if err != nil {
		return h, 0, fmt.Errorf("cut-short header: %w", err)
	}
	if err := json.Unmarshal(line, &h); err != nil {
		return h, 0, fmt.Errorf("bad header: %w", err)
	}
	if h.Table == "" || h.Token == "" || h.Rows < 0 {
		return h, 0, errors.New("incomplete header")
	}
	return h, len(magic) + len(line), nil
}

// load reads b's Native bytes back from its file.
func (sp *spool) load(b *Block) error {
	data, err := os.ReadFile(sp.path(b))
	if err != nil {
		return err
	}
	h, native, err := parseSpoolFile(data)
	if err != nil {
		return err
	}
	if h.Token != b.Token || h.Seq != b.Seq {
		return errors.New("spool file changed under us")
	}
	b.Native = native
	return nil
}

// parseSpoolFile checks a whole spool file and returns its header and Native bytes.
func parseSpoolFile(data []byte) (spoolHeader, []byte, error) {
	h, n, err := readHeader(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		return h, nil, err
	}
	native := data[n:]
	if crc32.Checksum(native, castagnoli) != h.CRC {
		return h, nil, errors.New("checksum mismatch: the file is damaged")
	}
	return h, native, nil
}

func (sp *spool) rejectedDir() string { return filepath.Join(sp.dir, "rejected") }

func (sp *spool) moveRejected(path string) {
	if err := os.MkdirAll(sp.rejectedDir(), 0o700); err != nil {
		sp.log.Error("cannot create directory for rejected blocks", "err", err)
		return
	}
	if err := os.Rename(path, filepath.Join(sp.rejectedDir(), filepath.Base(path))); err != nil {
		sp.log.Error("cannot move spool file", "file", path, "err", err)
	}
}

// reject moves b's spool file to rejected/, writing it first when b was not on disk.
func (sp *spool) reject(b *Block, onDisk bool) error {
	if !onDisk {
		if b.Native == nil {
			return nil
		}
		h, err := headerLine(b)
		if err != nil {
			return err
		}
		if err := sp.writeFile(b, h); err != nil {
			return err
		}
	}
	sp.moveRejected(sp.path(b))
	return nil
}
