package mongo

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cairn-dev/cairn"
	"github.com/cairn-dev/cairn/mongo/mongotest"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
)

func TestClassifyWrite(t *testing.T) {
	for _, c := range []struct {
		name string
		code int
		want writeOutcome
	}{
		{"DuplicateKey", 11000, outcomeDuplicate},
		{"DuplicateKeyCapped", 12582, outcomeDuplicate},
		{"BadValue", 2, outcomePermanent},
		{"DottedFieldName", 57, outcomePermanent},
		{"DollarPrefixedFieldName", 52, outcomePermanent},
		{"BSONObjectTooLarge", 10334, outcomePermanent},
		{"DocumentValidationFailure", 121, outcomePermanent},
		{"NotWritablePrimary", 10107, outcomeRetry},
		{"ShutdownInProgress", 91, outcomeRetry},
		{"Unknown", 424242, outcomeRetry},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := classifyWrite(c.code); got != c.want {
				t.Errorf("classifyWrite(%d) = %v, want %v", c.code, got, c.want)
			}
		})
	}
}

func TestClassifyInsertError(t *testing.T) {
	bwe := func(codes ...int) mongo.BulkWriteException {
		var e mongo.BulkWriteException
		for i, c := range codes {
			e.WriteErrors = append(e.WriteErrors, mongo.BulkWriteError{WriteError: mongo.WriteError{Index: i * 2, Code: c, Message: "m"}})
		}
		return e
	}
	withWC := bwe(11000)
	withWC.WriteConcernError = &mongo.WriteConcernError{Code: 64, Message: "waiting for replication timed out"}
	for _, c := range []struct {
		name string
		err  error
		ok   bool
		want string
	}{
		{"DuplicatesOnly", bwe(11000, 11000), true, "[{0 1} {2 1}]"},
		{"Mixed", bwe(11000, 2, 91), true, "[{0 1} {2 2} {4 0}]"},
		{"WriteConcernErrorRetriesAll", withWC, false, "[]"},
		{"NetworkError", errors.New("connection reset"), false, "[]"},
		{"Wrapped", fmt.Errorf("insert: %w", bwe(2)), true, "[{0 2}]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, ok := classifyInsertError(c.err)
			got := "["
			for i, o := range out {
				if i > 0 {
					got += " "
				}
				got += fmt.Sprintf("{%d %d}", o.index, o.outcome)
			}
			got += "]"
			if ok != c.ok || got != c.want {
				t.Errorf("classifyInsertError = %s, %v; want %s, %v", got, ok, c.want, c.ok)
			}
		})
	}
}

func TestStoreErrorCodes(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"ServerSelection", topology.ServerSelectionError{Wrapped: errors.New("no server")}, cairn.EUNAVAILABLE},
		{"Deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), cairn.EUNAVAILABLE},
		{"Disconnected", mongo.ErrClientDisconnected, cairn.EUNAVAILABLE},
		{"PrimarySteppedDown", mongo.CommandError{Code: 189, Message: "stepped down"}, cairn.EUNAVAILABLE},
		{"RetryableLabel", mongo.CommandError{Code: 1, Labels: []string{"RetryableWriteError"}}, cairn.EUNAVAILABLE},
		{"WriteConcern", mongo.BulkWriteException{WriteConcernError: &mongo.WriteConcernError{Code: 64}}, cairn.EUNAVAILABLE},
		{"Unauthorized", mongo.CommandError{Code: 13, Message: "not authorized"}, cairn.EINTERNAL},
		{"Other", errors.New("boom"), cairn.EINTERNAL},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := cairn.ErrorCode(storeError("op", c.err)); got != c.want {
				t.Errorf("storeError(%v) code = %s, want %s", c.err, got, c.want)
			}
		})
	}
}

// Errors exactly as a real server (FerretDB) sends them are sorted into
// duplicates and permanent rejections.
func TestClassifyRealServerErrors(t *testing.T) {
	srv := mongotest.Start(t)
	c, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Disconnect(context.Background()); err != nil {
			t.Errorf("disconnect: %v", err)
		}
	})
	coll := c.Database(mongotest.DatabaseName(t)).Collection("events")
	_, err = coll.InsertMany(t.Context(), []any{
		bson.D{{Key: "_id", Value: "d"}},
		bson.D{{Key: "_id", Value: "d"}},
		bson.D{{Key: "_id", Value: "dotted"}, {Key: "payload", Value: bson.D{{Key: "a.b", Value: 1}}}},
		bson.D{{Key: "_id", Value: "ok"}},
	}, options.InsertMany().SetOrdered(false))
	out, ok := classifyInsertError(err)
	if !ok || len(out) != 2 || out[0].index != 1 || out[0].outcome != outcomeDuplicate || out[1].index != 2 || out[1].outcome != outcomePermanent {
		t.Fatalf("classifyInsertError(%v) = %+v, %v; want duplicate@1, permanent@2", err, out, ok)
	}
	if n, _ := coll.CountDocuments(t.Context(), bson.D{}); n != 2 {
		t.Errorf("unordered insert stored %d documents, want 2", n)
	}
}
