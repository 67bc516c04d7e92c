// Command tiles reads a ledger service's log as C2SP tlog-tiles with Go's own sumdb code.
//
// Usage: tiles BASE_URL VERIFIER_KEY
//
// It opens BASE_URL/checkpoint with golang.org/x/mod/sumdb/note (the operator's verifier key
// must have signed it), reads the tree's hashes through tlog.TileHashReader (which checks
// every tile it reads against the checkpoint's root), recomputes the root with tlog.TreeHash,
// and proves and checks every entry of the entry tiles with tlog.ProveRecord and
// tlog.CheckRecord. It prints one line: "ok: ..." (exit 0) or "FAIL: ..." (exit 1).
package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

var base string

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func get(path string) []byte {
	resp, err := http.Get(base + "/" + path)
	if err != nil {
		fail("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		fail("GET %s: %v", path, err)
	}
	if resp.StatusCode != 200 {
		fail("GET %s: HTTP %d", path, resp.StatusCode)
	}
	return data
}

// C2SP tlog-tiles paths have no height element: Go's "tile/8/L/N" is "tile/L/N".
func tilePath(t tlog.Tile) string {
	return "tile/" + strings.TrimPrefix(t.Path(), "tile/8/")
}

type reader struct{}

func (reader) Height() int { return 8 }

func (reader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		out[i] = get(tilePath(t))
	}
	return out, nil
}

func (reader) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

func main() {
	if len(os.Args) != 3 {
		fail("usage: tiles BASE_URL VERIFIER_KEY")
	}
	base = strings.TrimSuffix(os.Args[1], "/")
	verifier, err := note.NewVerifier(os.Args[2])
	if err != nil {
		fail("verifier key: %v", err)
	}
	n, err := note.Open(get("checkpoint"), note.VerifierList(verifier))
	if err != nil {
		fail("checkpoint: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 {
		fail("checkpoint: %d lines", len(lines))
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail("checkpoint size: %v", err)
	}
	rootBytes, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(rootBytes) != tlog.HashSize {
		fail("checkpoint root: %v", err)
	}
	var root tlog.Hash
	copy(root[:], rootBytes)
	tree := tlog.Tree{N: size, Hash: root}
	hashes := tlog.TileHashReader(tree, reader{})
	again, err := tlog.TreeHash(size, hashes)
	if err != nil {
		fail("tree hash from the tiles: %v", err)
	}
	if again != root {
		fail("the tiles give root %v, the checkpoint %v", again, root)
	}
	proved := int64(0)
	for first := int64(0); first < size; first += 256 {
		width := size - first
		if width > 256 {
			width = 256
		}
		t := tlog.Tile{H: 8, L: 0, N: first / 256, W: int(width)}
		path := "tile/entries/" + strings.TrimPrefix(t.Path(), "tile/8/0/")
		data := get(path)
		for k := int64(0); k < width; k++ {
			if len(data) < 2 {
				fail("entry tile %s ends early", path)
			}
			length := int(data[0])<<8 | int(data[1])
			if len(data) < 2+length {
				fail("entry tile %s ends inside an entry", path)
			}
			entry := data[2 : 2+length]
			data = data[2+length:]
			index := first + k
			proof, err := tlog.ProveRecord(size, index, hashes)
			if err != nil {
				fail("prove entry %d: %v", index, err)
			}
			if err := tlog.CheckRecord(proof, size, root, index, tlog.RecordHash(entry)); err != nil {
				fail("entry %d: %v", index, err)
			}
			proved++
		}
		if len(data) != 0 {
			fail("entry tile %s has %d bytes past its entries", path, len(data))
		}
	}
	fmt.Printf("ok: %s size %d, root from the tiles matches, %d entries proved\n", lines[0], size, proved)
}
