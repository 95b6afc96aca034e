package memory_test

import (
	"testing"

	"github.com/kommbridge/kommbridge/store/memory"
	"github.com/kommbridge/kommbridge/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) storetest.Store { return memory.New(memory.Options{HistoryTurns: 3}) })
}
