package storetest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blazingflow/blazing/core/store"
)

// MustSubmit submits subs to s and fails t if any item is refused; it
// returns the outcomes. For drivers' own tests, which set up state with it.
func MustSubmit(t testing.TB, s store.Store, subs ...store.Submission) []store.Outcome {
	t.Helper()
	outs, errs := s.Submit(context.Background(), subs)
	for i, err := range errs {
		require.NoError(t, err, "submission %d", i)
	}
	return outs
}
