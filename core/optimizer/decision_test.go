package optimizer

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

func sampleDecision(t *testing.T) Decision {
	t.Helper()
	st, obs := second(asyncLoad(8, 96), blockingLoad(8, 0.8))
	d, _ := Decide(immediate(), st, obs)
	require.Equal(t, Move, d.Action)
	return d
}

func TestDecisionFields(t *testing.T) {
	d := sampleDecision(t)
	f := d.Fields()
	assert.Equal(t, "move", f["action"])
	assert.Equal(t, "more-urgent", f["reason"])
	assert.Equal(t, "blocking", f["from"])
	assert.Equal(t, "async", f["to"])
	assert.Equal(t, "7", f["count"])
	assert.Equal(t, "8", f["before_async"])
	assert.Equal(t, "15", f["after_async"])
	assert.Equal(t, "1", f["after_blocking"])
	assert.Equal(t, "1.5", f["async_urgency"])
	assert.Equal(t, "0.1", f["blocking_urgency"])
	assert.Equal(t, "96", f["async_arrival_rate"])
	assert.Equal(t, "8", f["async_service_s"])
	assert.Equal(t, "64", f["async_slots"])
	assert.Equal(t, d.Detail, f["detail"])
	assert.Equal(t, "1735732830000", f["time"], "Unix milliseconds")
	for k, v := range f {
		assert.NotContains(t, v, "NaN", k)
		assert.NotContains(t, v, "Inf", k)
	}
}

func TestDecisionRoundTrips(t *testing.T) {
	d := sampleDecision(t)

	js, err := json.Marshal(d)
	require.NoError(t, err)
	var fromJSON Decision
	require.NoError(t, json.Unmarshal(js, &fromJSON))
	assert.True(t, d.Time.Equal(fromJSON.Time))
	fromJSON.Time = d.Time
	assert.Equal(t, d, fromJSON)
	assert.Contains(t, string(js), `"reason":"more-urgent"`)
	assert.Contains(t, string(js), `"after":{"async":15,"blocking":1}`)

	mp, err := msgpack.Marshal(d)
	require.NoError(t, err)
	var fromMsgpack Decision
	require.NoError(t, msgpack.Unmarshal(mp, &fromMsgpack))
	assert.True(t, d.Time.Equal(fromMsgpack.Time))
	fromMsgpack.Time = d.Time
	assert.Equal(t, d, fromMsgpack)
}

func TestStateRoundTrips(t *testing.T) {
	st, obs := second(asyncLoad(8, 96), blockingLoad(8, 0.8))
	cfg := immediate()
	cfg.ConfirmTicks = 2
	_, next := Decide(cfg, st, obs)
	require.NotZero(t, next.Pending)

	js, err := json.Marshal(next)
	require.NoError(t, err)
	var back State
	require.NoError(t, json.Unmarshal(js, &back))
	obs.Time = obs.Time.Add(tick)
	d1, s1 := Decide(cfg, next, obs)
	d2, s2 := Decide(cfg, back, obs)
	assert.Equal(t, d1.After, d2.After)
	assert.Equal(t, s1.Changes, s2.Changes)
	assert.Equal(t, Move, d2.Action, "the restored state remembers the pending confirmation")
}
