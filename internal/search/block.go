package search

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
)

// A posting block lists the emails of one batch that hold one token, each
// with the fields it is in. Its encoding is the octet BlockVersion, then
// per posting, in id order: the length of the prefix the id shares with
// the previous one (uvarint), the length of the rest (uvarint), the rest,
// and the field mask (one octet). Ids of one batch are close, so most of
// each id is a shared prefix.

// BlockVersion is the first octet of an encoded posting block. It is
// above every field mask, so a block is never mistaken for the one-octet
// value of a single posting.
const BlockVersion = 0xb1

// ErrBadBlock is returned by DecodeBlock for a value that is not a posting
// block.
var ErrBadBlock = errors.New("search: malformed posting block")

// Posting is one email of a posting block.
type Posting struct {
	ID     string
	Fields uint8
}

// ComparePostings orders postings as blocks hold them: shorter ids first,
// then ids of one length bytewise.
func ComparePostings(a, b Posting) int {
	if len(a.ID) != len(b.ID) {
		return len(a.ID) - len(b.ID)
	}
	return strings.Compare(a.ID, b.ID)
}

// AppendBlock appends the encoding of ps to dst. It sorts ps.
func AppendBlock(dst []byte, ps []Posting) []byte {
	slices.SortFunc(ps, ComparePostings)
	dst = append(dst, BlockVersion)
	prev := ""
	for _, p := range ps {
		shared := 0
		for shared < len(prev) && shared < len(p.ID) && prev[shared] == p.ID[shared] {
			shared++
		}
		dst = binary.AppendUvarint(dst, uint64(shared))
		dst = binary.AppendUvarint(dst, uint64(len(p.ID)-shared))
		dst = append(dst, p.ID[shared:]...)
		dst = append(dst, p.Fields)
		prev = p.ID
	}
	return dst
}

// DecodeBlock calls yield with each posting of the block b, in order, until
// yield returns false. It returns ErrBadBlock, having yielded the postings
// before the fault, when b is malformed.
func DecodeBlock(b []byte, yield func(id string, fields uint8) bool) error {
	return DecodeBlockBytes(b, func(id []byte, fields uint8) bool { return yield(string(id), fields) })
}

// DecodeBlockBytes is DecodeBlock with each id as bytes that are valid
// only until yield returns, which spares a copy per posting.
func DecodeBlockBytes(b []byte, yield func(id []byte, fields uint8) bool) error {
	if len(b) == 0 || b[0] != BlockVersion {
		return ErrBadBlock
	}
	b = b[1:]
	var id []byte
	for len(b) > 0 {
		shared, n := binary.Uvarint(b)
		if n <= 0 || shared > uint64(len(id)) {
			return ErrBadBlock
		}
		b = b[n:]
		rest, n := binary.Uvarint(b)
		if n <= 0 || rest >= uint64(len(b)-n) {
			return ErrBadBlock // the rest and the mask octet must follow
		}
		b = b[n:]
		id = append(id[:shared], b[:rest]...)
		fields := b[rest]
		b = b[rest+1:]
		if len(id) == 0 {
			return ErrBadBlock
		}
		if !yield(id, fields) {
			return nil
		}
	}
	return nil
}
