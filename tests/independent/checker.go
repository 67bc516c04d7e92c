// Command checker checks a ledger's checkpoint, cosignatures and proofs with Go's own
// implementations of the formats: golang.org/x/mod/sumdb/note for the C2SP signed note and
// golang.org/x/mod/sumdb/tlog for the RFC 6962 Merkle tree and its proofs. Nothing here
// comes from the ledger; the cosignature check (C2SP tlog-cosignature, which x/mod does not
// implement) is written from the specification with crypto/ed25519.
//
// Usage: checker INPUT.json
//
// The input, written by tests/test_independent.py:
//
//	{
//	  "operator_name": "operator",            // the checkpoint signer's key name
//	  "operator_public_key": "<hex>",         // its raw 32-byte Ed25519 public key
//	  "operator_vkey": "<name>+<id>+<b64>",   // optional: the ledger's verifier key, compared
//	  "origin": "<origin>",                   // optional: the origin the checkpoint must name
//	  "checkpoint": "<signed note text>",
//	  "entries": ["<canonical entry text>", ...],   // every leaf of the checkpoint, in order
//	  "inclusion": [{"index": i, "proof": ["<b64>", ...], "leaf_hash": "<b64>"}],  // leaf_hash optional
//	  "consistency": [{"from": m, "to": n, "root_from": "<b64>", "root_to": "<b64>",
//	                   "proof": ["<b64>", ...]}],
//	  "cosigners": [{"name": "<witness name>", "public_key": "<hex>"}]
//	}
//
// Every listed cosigner must have at least one cosignature line, and every line of it must
// verify. Signature lines of keys not listed are ignored, as C2SP signed-note requires.
//
// Exit status 0 and one line "ok: ..." when everything checks; 1 and one line "FAIL: ..."
// otherwise.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type inclusionProof struct {
	Index    *int64   `json:"index"`
	Proof    []string `json:"proof"`
	LeafHash string   `json:"leaf_hash"`
}

type consistencyProof struct {
	From     *int64   `json:"from"`
	To       *int64   `json:"to"`
	RootFrom string   `json:"root_from"`
	RootTo   string   `json:"root_to"`
	Proof    []string `json:"proof"`
}

type cosigner struct {
	Name      string `json:"name"`
	PublicKey string `json:"public_key"`
}

type input struct {
	OperatorName      string             `json:"operator_name"`
	OperatorPublicKey string             `json:"operator_public_key"`
	OperatorVkey      string             `json:"operator_vkey"`
	Origin            *string            `json:"origin"`
	Checkpoint        *string            `json:"checkpoint"`
	Entries           []string           `json:"entries"`
	Inclusion         []inclusionProof   `json:"inclusion"`
	Consistency       []consistencyProof `json:"consistency"`
	Cosigners         []cosigner         `json:"cosigners"`
}

const (
	cosignatureKeyType = 0x04
	maxTimestamp       = 1<<63 - 1
)

func fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Println("FAIL: " + strings.ReplaceAll(msg, "\n", `\n`))
	os.Exit(1)
}

// decodeHash reads one base64 hash, in its canonical spelling only.
func decodeHash(text, what string) tlog.Hash {
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		fail("%s %q is not base64: %v", what, text, err)
	}
	if len(raw) != tlog.HashSize {
		fail("%s is %d bytes, not %d", what, len(raw), tlog.HashSize)
	}
	if base64.StdEncoding.EncodeToString(raw) != text {
		fail("%s %q is not canonical base64", what, text)
	}
	var h tlog.Hash
	copy(h[:], raw)
	return h
}

func decodeProof(texts []string, what string) []tlog.Hash {
	proof := make([]tlog.Hash, len(texts))
	for i, text := range texts {
		proof[i] = decodeHash(text, fmt.Sprintf("hash %d of %s", i, what))
	}
	return proof
}

func decodeKey(text, what string) ed25519.PublicKey {
	raw, err := hex.DecodeString(text)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		fail("%s %q is not a hex Ed25519 public key", what, text)
	}
	return ed25519.PublicKey(raw)
}

// checkpoint is the note text of a C2SP tlog-checkpoint.
type checkpoint struct {
	origin     string
	size       int64
	root       tlog.Hash
	extensions int
}

func parseCheckpoint(text string) checkpoint {
	if !strings.HasSuffix(text, "\n") {
		fail("the checkpoint text does not end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		fail("the checkpoint text has %d lines, a checkpoint needs origin, size and root", len(lines))
	}
	if lines[0] == "" {
		fail("the checkpoint's origin line is empty")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		fail("the checkpoint's size line %q is not a decimal tree size", lines[1])
	}
	for _, ext := range lines[3:] {
		if ext == "" {
			fail("the checkpoint has an empty extension line")
		}
	}
	return checkpoint{lines[0], size, decodeHash(lines[2], "the checkpoint's root"), len(lines) - 3}
}

// cosignatureKeyID is SHA-256(name || 0x0A || 0x04 || public key)[:4], as a uint32 the way
// x/mod/sumdb/note reports key hashes.
func cosignatureKeyID(name string, key ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', cosignatureKeyType})
	h.Write(key)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// checkCosigner verifies every cosignature line of one witness; it returns how many there were.
func checkCosigner(c cosigner, n *note.Note) int {
	if c.Name == "" {
		fail("a cosigner has no name")
	}
	key := decodeKey(c.PublicKey, "the public key of cosigner "+c.Name)
	id := cosignatureKeyID(c.Name, key)
	found := 0
	for _, sig := range append(append([]note.Signature{}, n.Sigs...), n.UnverifiedSigs...) {
		if sig.Name != c.Name || sig.Hash != id {
			continue
		}
		found++
		raw, err := base64.StdEncoding.DecodeString(sig.Base64)
		if err != nil {
			fail("the cosignature line of %s is not base64", c.Name)
		}
		// key id (4) || timestamp (8, big-endian) || Ed25519 signature (64)
		if len(raw) != 4+8+ed25519.SignatureSize {
			fail("the cosignature of %s is %d bytes, a cosignature/v1 line holds 76", c.Name, len(raw))
		}
		timestamp := binary.BigEndian.Uint64(raw[4:12])
		if timestamp > maxTimestamp {
			fail("the cosignature of %s has timestamp %d, above 2^63-1", c.Name, timestamp)
		}
		message := fmt.Sprintf("cosignature/v1\ntime %d\n%s", timestamp, n.Text)
		if !ed25519.Verify(key, []byte(message), raw[12:]) {
			fail("the cosignature of %s (key id %08x, time %d) does not verify", c.Name, id, timestamp)
		}
	}
	if found == 0 {
		fail("no cosignature line of %s (key id %08x) in the checkpoint", c.Name, id)
	}
	return found
}

func main() {
	if len(os.Args) != 2 {
		fail("usage: checker INPUT.json")
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail("cannot read the input: %v", err)
	}
	var in input
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&in); err != nil {
		fail("the input is not the expected JSON: %v", err)
	}
	if in.Checkpoint == nil {
		fail("the input has no checkpoint")
	}

	// 1. The signed note, opened by x/mod/sumdb/note under the operator's key alone.
	operatorKey := decodeKey(in.OperatorPublicKey, "the operator public key")
	vkey, err := note.NewEd25519VerifierKey(in.OperatorName, operatorKey)
	if err != nil {
		fail("cannot make the operator's verifier key: %v", err)
	}
	if in.OperatorVkey != "" && in.OperatorVkey != vkey {
		fail("the ledger's verifier key %q differs from x/mod's %q", in.OperatorVkey, vkey)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		fail("x/mod rejects the operator's verifier key %q: %v", vkey, err)
	}
	n, err := note.Open([]byte(*in.Checkpoint), note.VerifierList(verifier))
	if err != nil {
		fail("note.Open rejects the checkpoint under %s: %v", vkey, err)
	}
	if len(n.Sigs) != 1 {
		fail("expected one verified operator signature, got %d", len(n.Sigs))
	}

	// 2. The checkpoint text.
	cp := parseCheckpoint(n.Text)
	if in.Origin != nil && cp.origin != *in.Origin {
		fail("the checkpoint names origin %q, not %q", cp.origin, *in.Origin)
	}
	if cp.size == 0 {
		fail("the checkpoint is of the empty tree")
	}

	// 3. The tree: every entry hashed and stored the way tlog stores a log.
	if int64(len(in.Entries)) != cp.size {
		fail("the input gives %d entries for a checkpoint of size %d", len(in.Entries), cp.size)
	}
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, index := range indexes {
			if index < 0 || index >= int64(len(stored)) {
				return nil, fmt.Errorf("no stored hash %d (have %d)", index, len(stored))
			}
			out[i] = stored[index]
		}
		return out, nil
	})
	leaves := make([]tlog.Hash, len(in.Entries))
	for i, text := range in.Entries {
		leaves[i] = tlog.RecordHash([]byte(text))
		if want := tlog.StoredHashIndex(0, int64(i)); want != int64(len(stored)) {
			fail("tlog storage out of step at record %d", i)
		}
		hashes, err := tlog.StoredHashes(int64(i), []byte(text), reader)
		if err != nil {
			fail("tlog.StoredHashes(%d): %v", i, err)
		}
		stored = append(stored, hashes...)
	}
	treeHash := func(size int64, what string) tlog.Hash {
		if size < 1 || size > cp.size {
			fail("%s: tree size %d is outside 1..%d", what, size, cp.size)
		}
		h, err := tlog.TreeHash(size, reader)
		if err != nil {
			fail("%s: tlog.TreeHash(%d): %v", what, size, err)
		}
		return h
	}
	if root := treeHash(cp.size, "the checkpoint"); root != cp.root {
		fail("the checkpoint's root %s is not tlog.TreeHash of its %d entries, %s",
			cp.root, cp.size, root)
	}

	// 4. Inclusion proofs against the checkpoint.
	for _, p := range in.Inclusion {
		if p.Index == nil {
			fail("an inclusion proof has no index")
		}
		i := *p.Index
		if i < 0 || i >= cp.size {
			fail("inclusion proof of leaf %d: outside the checkpoint's %d leaves", i, cp.size)
		}
		what := fmt.Sprintf("the inclusion proof of leaf %d", i)
		if p.LeafHash != "" && decodeHash(p.LeafHash, "the leaf hash of "+what) != leaves[i] {
			fail("the ledger's leaf hash of entry %d is not tlog.RecordHash of its text", i)
		}
		if err := tlog.CheckRecord(decodeProof(p.Proof, what), cp.size, cp.root, i, leaves[i]); err != nil {
			fail("tlog.CheckRecord rejects %s in the tree of %d: %v", what, cp.size, err)
		}
	}

	// 5. Consistency proofs, with both roots recomputed from the entries.
	for _, p := range in.Consistency {
		if p.From == nil || p.To == nil {
			fail("a consistency proof lacks its sizes")
		}
		from, to := *p.From, *p.To
		what := fmt.Sprintf("the consistency proof from %d to %d", from, to)
		rootFrom, rootTo := decodeHash(p.RootFrom, "root_from of "+what), decodeHash(p.RootTo, "root_to of "+what)
		if from > to {
			fail("%s: the sizes are the wrong way round", what)
		}
		if h := treeHash(from, what); h != rootFrom {
			fail("%s: root_from %s is not tlog.TreeHash(%d) = %s", what, rootFrom, from, h)
		}
		if h := treeHash(to, what); h != rootTo {
			fail("%s: root_to %s is not tlog.TreeHash(%d) = %s", what, rootTo, to, h)
		}
		if err := tlog.CheckTree(decodeProof(p.Proof, what), to, rootTo, from, rootFrom); err != nil {
			fail("tlog.CheckTree rejects %s: %v", what, err)
		}
	}

	// 6. Cosignatures of the listed witnesses (C2SP tlog-cosignature, cosignature/v1).
	cosigned := 0
	names := []string{}
	for _, c := range in.Cosigners {
		cosigned += checkCosigner(c, n)
		names = append(names, c.Name)
	}

	fmt.Printf("ok: %s size %d root %s signed by %s; %d entries hashed; %d inclusion and %d "+
		"consistency proofs; %d cosignatures (%s); %d other signature lines ignored\n",
		cp.origin, cp.size, cp.root, vkey, len(in.Entries), len(in.Inclusion),
		len(in.Consistency), cosigned, strings.Join(names, ","),
		len(n.Sigs)+len(n.UnverifiedSigs)-1-cosigned)
}
