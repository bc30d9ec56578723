package mongo_test

import (
	"testing"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/mongo"
	"github.com/cairn-dev/cairn/mongo/mongotest"
	"github.com/cairn-dev/cairn/storetest"
)

func TestSourceConformance(t *testing.T) {
	srv := mongotest.Start(t)
	storetest.RunSourceStore(t, func(t *testing.T) cairn.SourceStore {
		return open(t, srv, mongo.Config{})
	})
}
