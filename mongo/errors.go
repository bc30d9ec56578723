package mongo

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairn-dev/cairn"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
)

// writeOutcome is what a per-document write error means for that document.
type writeOutcome int

const (
	// outcomeRetry: the batch must be retried (the default for unknown codes,
	// so that nothing is ever silently lost).
	outcomeRetry writeOutcome = iota
	// outcomeDuplicate: the document is already stored; success.
	outcomeDuplicate
	// outcomePermanent: the server will never accept this document.
	outcomePermanent
)

// Server error codes (src/mongo/base/error_codes.yml).
const (
	codeNotImplemented = 238
	codeIndexOptions   = 85 // IndexOptionsConflict
	codeIndexKeySpecs  = 86 // IndexKeySpecsConflict
)

// duplicateCodes are the duplicate-key errors: the event is already stored.
var duplicateCodes = map[int]bool{
	11000: true, // DuplicateKey
	11001: true, // DuplicateKey on update (legacy)
	12582: true, // DuplicateKey in a capped collection
}

// permanentCodes are per-document errors that retrying can never fix.
var permanentCodes = map[int]bool{
	2:     true, // BadValue (FerretDB: invalid key names, nesting)
	4:     true, // NoSuchKey
	9:     true, // FailedToParse
	14:    true, // TypeMismatch
	15:    true, // Overflow (nesting depth)
	22:    true, // InvalidBSON
	30:    true, // InvalidPath
	52:    true, // DollarPrefixedFieldName
	53:    true, // InvalidIdField
	55:    true, // InvalidDBRef
	56:    true, // EmptyFieldName
	57:    true, // DottedFieldName
	121:   true, // DocumentValidationFailure
	10334: true, // BSONObjectTooLarge
	17280: true, // KeyTooLong
	16755: true, // Location16755: can't extract geo keys
}

// unavailableCodes are server errors that mean "not now": the server is
// shutting down, stepping down, electing, or out of time.
var unavailableCodes = map[int32]bool{
	6:     true, // HostUnreachable
	7:     true, // HostNotFound
	50:    true, // MaxTimeMSExpired
	64:    true, // WriteConcernFailed
	89:    true, // NetworkTimeout
	91:    true, // ShutdownInProgress
	133:   true, // FailedToSatisfyReadPreference
	189:   true, // PrimarySteppedDown
	202:   true, // NetworkInterfaceExceededTimeLimit
	262:   true, // ExceededTimeLimit
	9001:  true, // SocketException
	10107: true, // NotWritablePrimary
	11600: true, // InterruptedAtShutdown
	11602: true, // InterruptedDueToReplStateChange
	13435: true, // NotPrimaryNoSecondaryOk
	13436: true, // NotPrimaryOrSecondary
}

// classifyWrite says what one document's write error means.
func classifyWrite(code int) writeOutcome {
	switch {
	case duplicateCodes[code]:
		return outcomeDuplicate
	case permanentCodes[code]:
		return outcomePermanent
	}
	return outcomeRetry
}

// isUnavailable reports whether err means the server cannot be reached or
// cannot serve right now (as opposed to rejecting the request).
func isUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, mongo.ErrClientDisconnected) ||
		mongo.IsNetworkError(err) || mongo.IsTimeout(err) {
		return true
	}
	var sse topology.ServerSelectionError
	if errors.As(err, &sse) {
		return true
	}
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		return unavailableCodes[ce.Code] || ce.HasErrorLabel("RetryableWriteError") || ce.HasErrorLabel("TransientTransactionError")
	}
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) {
		if bwe.WriteConcernError != nil {
			return true
		}
		return bwe.HasErrorLabel("RetryableWriteError")
	}
	return false
}

// storeError wraps err from the driver as a *cairn.Error: EUNAVAILABLE when
// the server cannot be reached or cannot serve now, EINTERNAL otherwise.
func storeError(op string, err error) error {
	if err == nil {
		return nil
	}
	var ce *cairn.Error
	if errors.As(err, &ce) {
		return err
	}
	if isUnavailable(err) {
		return &cairn.Error{Code: cairn.EUNAVAILABLE, Message: "MongoDB is unavailable.", Err: fmt.Errorf("%s: %w", op, err)}
	}
	return &cairn.Error{Code: cairn.EINTERNAL, Message: "MongoDB error.", Err: fmt.Errorf("%s: %w", op, err)}
}

// serverCode returns the server error code of err, or 0.
func serverCode(err error) int {
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		return int(ce.Code)
	}
	var we mongo.WriteException
	if errors.As(err, &we) && len(we.WriteErrors) > 0 {
		return we.WriteErrors[0].Code
	}
	var se mongo.ServerError
	if errors.As(err, &se) {
		for _, c := range []int{codeNotImplemented, codeIndexOptions, codeIndexKeySpecs} {
			if se.HasErrorCode(c) {
				return c
			}
		}
	}
	return 0
}
