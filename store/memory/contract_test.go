package memory_test

import (
	"testing"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/bridge"
	"github.com/kommbridge/kommbridge/store/memory"
	"github.com/kommbridge/kommbridge/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) storetest.Store { return memory.New(memory.Options{HistoryTurns: 3}) })
}

func TestLimiterContract(t *testing.T) {
	storetest.RunLimiter(t, func(t *testing.T, conv, user, global kommbridge.Rate) bridge.Limiter {
		return memory.NewLimiter(memory.LimitOptions{
			Conversation: conv, User: user, Global: global,
		})
	})
}
