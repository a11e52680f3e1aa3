package store_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
)

func TestSubmissionValidate(t *testing.T) {
	good := func() store.Submission {
		return store.Submission{Ref: store.Ref{Unit: "u", Path: "0.1"}, Parent: "0", Depth: 1, Name: "step"}
	}
	root := store.Submission{Ref: store.Ref{Unit: "u", Path: store.RootPath}, Name: "flow"}
	require.NoError(t, root.Validate(), "a root")
	call := good()
	require.NoError(t, call.Validate(), "a call")
	for name, change := range map[string]func(*store.Submission){
		"empty unit":              func(s *store.Submission) { s.Ref.Unit = "" },
		"empty path":              func(s *store.Submission) { s.Ref.Path = "" },
		"empty name":              func(s *store.Submission) { s.Name = "" },
		"unknown lane":            func(s *store.Submission) { s.Lane = store.NumLanes },
		"non-root without parent": func(s *store.Submission) { s.Parent = "" },
	} {
		s := good()
		change(&s)
		require.ErrorIs(t, s.Validate(), store.ErrInvalid, name)
	}
}
