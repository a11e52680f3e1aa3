package optimizer

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := DefaultConfig()
	require.NoError(t, cfg.Validate())
	assert.Equal(t, 8, cfg.MinTotal)
	assert.Equal(t, 8, cfg.MaxTotal)
	assert.Equal(t, 7, cfg.MaxAsync)
	assert.Equal(t, 7, cfg.MaxBlocking)
}

func TestWithTotal(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MinBlocking = 2
	cfg = cfg.WithTotal(4, 16)
	require.NoError(t, cfg.Validate())
	assert.Equal(t, 4, cfg.MinTotal)
	assert.Equal(t, 16, cfg.MaxTotal)
	assert.Equal(t, 14, cfg.MaxAsync)
	assert.Equal(t, 15, cfg.MaxBlocking)
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"negative minimum", func(c *Config) { c.MinAsync = -1 }, "must not be negative"},
		{"async max below min", func(c *Config) { c.MaxAsync = 0 }, "max_async 0 is below min_async 1"},
		{"blocking max below min", func(c *Config) { c.MaxBlocking = 0 }, "max_blocking 0 is below"},
		{"no total", func(c *Config) { c.MaxTotal, c.MinTotal = 0, 0 }, "max_total 0 must be at least 1"},
		{"min total above max", func(c *Config) { c.MinTotal = 9 }, "min_total 9 is above max_total 8"},
		{"minimums above total", func(c *Config) { c.MinAsync, c.MinBlocking = 5, 5 }, "lane minimums (5 + 5) exceed"},
		{"maximums below min total", func(c *Config) { c.MaxAsync, c.MaxBlocking = 3, 3 }, "cannot reach min_total"},
		{"negative dead band", func(c *Config) { c.DeadBand = -0.1 }, "dead_band"},
		{"no confirmation", func(c *Config) { c.ConfirmTicks = 0 }, "confirm_ticks"},
		{"negative cooldown", func(c *Config) { c.Cooldown = -time.Second }, "cooldown"},
		{"no step", func(c *Config) { c.Step = 0 }, "step 0"},
		{"negative gain", func(c *Config) { c.MinGain = -1 }, "min_gain"},
		{"no horizon", func(c *Config) { c.Horizon = 0 }, "horizon"},
		{"no smoothing", func(c *Config) { c.Smoothing = 0 }, "smoothing"},
		{"grow below shrink", func(c *Config) { c.GrowAbove = 0.05 }, "shrink_below"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.change(&cfg)
			err := cfg.Validate()
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrInvalidConfig))
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Step, cfg.Horizon = 0, 0
	err := cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "step")
	assert.Contains(t, err.Error(), "horizon")
}

func TestBoundTotal(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		name       string
		cpus       int
		mem, per   uint64
		configured int
		want       int
	}{
		{"two per cpu by default", 8, 0, 0, 0, 16},
		{"configured within the cpu bound", 8, 0, 0, 20, 20},
		{"configured above four per cpu", 8, 0, 0, 100, 32},
		{"memory binds", 8, 2 * gib, DefaultPerWorkerBytes, 0, 6},
		{"memory is generous", 8, 64 * gib, DefaultPerWorkerBytes, 0, 16},
		{"no cpus counts as one", 0, 0, 0, 0, 2},
		{"never below two", 1, 256 << 20, DefaultPerWorkerBytes, 0, 2},
		{"unknown per-worker size ignores memory", 4, gib, 0, 0, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, BoundTotal(tt.cpus, tt.mem, tt.per, tt.configured))
		})
	}
}
