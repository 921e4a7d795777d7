package chhttp

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// ClickHouse error codes the server itself raises.
const (
	codeSyntaxError      = 62
	codeUnknownSetting   = 115
	codeReadonly         = 164
	codeNotImplemented   = 48
	codeBadArguments     = 36
	codeCannotDecompress = 271
	codeQueryTooLarge    = 393
	codeAuthFailed       = 516
	codeStdException     = 1001
)

var codeNames = map[int]string{
	codeSyntaxError:      "SYNTAX_ERROR",
	codeUnknownSetting:   "UNKNOWN_SETTING",
	codeReadonly:         "READONLY",
	codeNotImplemented:   "NOT_IMPLEMENTED",
	codeBadArguments:     "BAD_ARGUMENTS",
	codeCannotDecompress: "CANNOT_DECOMPRESS",
	codeQueryTooLarge:    "QUERY_IS_TOO_LARGE",
	codeAuthFailed:       "AUTHENTICATION_FAILED",
	codeStdException:     "STD_EXCEPTION",
}

// Exception is an error as ClickHouse reports it: a code and a message.
type Exception struct {
	Code    int
	Message string // without the "Code: N. DB::Exception: " prefix
}

func (e *Exception) Error() string {
	return fmt.Sprintf("Code: %d. DB::Exception: %s", e.Code, e.Message)
}

func newException(code int, format string, args ...any) *Exception {
	msg := fmt.Sprintf(format, args...)
	if name := codeNames[code]; name != "" {
		msg += " (" + name + ")"
	}
	return &Exception{Code: code, Message: msg}
}

var exceptionPrefix = regexp.MustCompile(`^(?:Code: (\d+)\. DB::Exception: )+`)

// asException turns any error into an Exception: the engine's errors carry their code in the
// text ("Code: 60. DB::Exception: ...", sometimes twice); others become STD_EXCEPTION.
func asException(err error) *Exception {
	var e *Exception
	if errors.As(err, &e) {
		return e
	}
	msg := strings.TrimSpace(err.Error())
	// Wrapped engine errors ("cannot insert into t: Code: 60. ...") keep the engine's part.
	if i := strings.Index(msg, "Code: "); i > 0 && exceptionPrefix.MatchString(msg[i:]) {
		msg = msg[i:]
	}
	if m := exceptionPrefix.FindStringSubmatch(msg); m != nil {
		if code, err := strconv.Atoi(m[1]); err == nil && code > 0 {
			return &Exception{Code: code, Message: msg[len(m[0]):]}
		}
	}
	return &Exception{Code: codeStdException, Message: msg + " (STD_EXCEPTION)"}
}

// httpStatus is the HTTP status ClickHouse's own server gives an exception code (a subset of its
// mapping; everything else is 500).
func httpStatus(code int) int {
	switch code {
	case 192, 193, 194, codeAuthFailed: // UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD
		return http.StatusUnauthorized
	case codeReadonly, 497: // ACCESS_DENIED
		return http.StatusForbidden
	case 6, 26, 27, 32, 33, 38, 41, 53, 62, 69, 72, 117, 130, 167, 168, codeBadArguments, codeCannotDecompress:
		// CANNOT_PARSE_*, ATTEMPT_TO_READ_AFTER_EOF, TYPE_MISMATCH, SYNTAX_ERROR,
		// ARGUMENT_OUT_OF_BOUND, INCORRECT_DATA, TOO_DEEP_AST, TOO_BIG_AST
		return http.StatusBadRequest
	case 46, 47, 50, 60, 63, 73, 81, codeUnknownSetting: // UNKNOWN_FUNCTION, _IDENTIFIER, _TYPE, _TABLE, ...
		return http.StatusNotFound
	case codeQueryTooLarge:
		return http.StatusRequestEntityTooLarge
	case codeNotImplemented:
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}
