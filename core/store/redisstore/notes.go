package redisstore

import (
	"bytes"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/blazingflow/blazing/core/store"
)

// Encodings shared with the Lua scripts (which use Redis' cmsgpack):
//
// An ErrorInfo is a msgpack array [type, message, traceback, payload]; the
// trailing elements are left out when empty (scripts write [type, message]),
// and payload is a bin (or nil), so its bytes round-trip exactly.
//
// A Note is not wrapped in an array but is a run of msgpack values, so that
// a script can append a stored error without decoding it:
// kind, unit, path, status, result, lease id, error (array or nil).

// encodeError encodes info for the "e" field and notes.
func encodeError(info *store.ErrorInfo) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	n := 4
	if info.Payload == nil {
		n = 3
		if info.Traceback == "" {
			n = 2
		}
	}
	err := enc.EncodeArrayLen(n)
	if err == nil {
		err = enc.EncodeString(info.Type)
	}
	if err == nil {
		err = enc.EncodeString(info.Message)
	}
	if err == nil && n > 2 {
		err = enc.EncodeString(info.Traceback)
	}
	if err == nil && n > 3 {
		err = enc.EncodeBytes(info.Payload)
	}
	if err != nil {
		return nil, fmt.Errorf("encode error info: %w", err)
	}
	return buf.Bytes(), nil
}

// decodeError reads an error written by encodeError or by a script; a nil
// (or false) value is no error.
func decodeError(dec *msgpack.Decoder) (*store.ErrorInfo, error) {
	c, err := dec.PeekCode()
	if err != nil {
		return nil, err
	}
	if c == msgpcode.Nil || c == msgpcode.False {
		return nil, dec.Skip()
	}
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return nil, err
	}
	if n < 2 || n > 4 {
		return nil, fmt.Errorf("error info has %d elements", n)
	}
	info := &store.ErrorInfo{}
	if info.Type, err = dec.DecodeString(); err != nil {
		return nil, err
	}
	if info.Message, err = dec.DecodeString(); err != nil {
		return nil, err
	}
	if n > 2 {
		if info.Traceback, err = dec.DecodeString(); err != nil {
			return nil, err
		}
	}
	if n > 3 {
		if info.Payload, err = dec.DecodeBytes(); err != nil {
			return nil, err
		}
	}
	return info, nil
}

func decodeErrorField(b string) (*store.ErrorInfo, error) {
	dec := msgpack.NewDecoder(bytes.NewReader([]byte(b)))
	info, err := decodeError(dec)
	if err != nil {
		return nil, fmt.Errorf("malformed error info: %w", err)
	}
	return info, nil
}

// noteDecoder decodes the notes of one Pop with one reused decoder.
type noteDecoder struct {
	rd  bytes.Reader
	dec *msgpack.Decoder
}

func newNoteDecoder() *noteDecoder {
	d := &noteDecoder{}
	d.dec = msgpack.NewDecoder(&d.rd)
	return d
}

func (d *noteDecoder) decode(raw string) (store.Note, error) {
	d.rd.Reset([]byte(raw))
	d.dec.Reset(&d.rd)
	var n store.Note
	kind, err := d.dec.DecodeUint8()
	if err != nil {
		return n, fmt.Errorf("malformed note: kind: %w", err)
	}
	n.Kind = store.NoteKind(kind)
	if n.Ref.Unit, err = d.dec.DecodeString(); err != nil {
		return n, fmt.Errorf("malformed note: unit: %w", err)
	}
	if n.Ref.Path, err = d.dec.DecodeString(); err != nil {
		return n, fmt.Errorf("malformed note: path: %w", err)
	}
	st, err := d.dec.DecodeUint8()
	if err != nil {
		return n, fmt.Errorf("malformed note: status: %w", err)
	}
	n.Status = store.Status(st)
	if n.Result, err = d.dec.DecodeBytes(); err != nil {
		return n, fmt.Errorf("malformed note: result: %w", err)
	}
	if len(n.Result) == 0 {
		n.Result = nil
	}
	if n.LeaseID, err = d.dec.DecodeUint64(); err != nil {
		return n, fmt.Errorf("malformed note: lease: %w", err)
	}
	if n.Error, err = decodeError(d.dec); err != nil {
		return n, fmt.Errorf("malformed note: error: %w", err)
	}
	return n, nil
}
