package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/watchdog-ha/watchdog/fsm"
)

// serviceRoutes adds the service management and history routes:
//
//	PUT    /v1/services/{id}         define or change a service (body: serviceSpec)
//	DELETE /v1/services/{id}         forget a service defined by the API or a heartbeat
//	GET    /v1/services/{id}/events  the service's history
//	GET    /v1/events                every service's history, in commit order
func (s *Server) serviceRoutes(r *mux.Router) {
	r.HandleFunc("/v1/services/{id}", s.leaderWrite(s.handlePut)).Methods(http.MethodPut)
	r.HandleFunc("/v1/services/{id}", s.leaderWrite(s.handleDelete)).Methods(http.MethodDelete)
	r.HandleFunc("/v1/services/{id}/events", s.handleServiceEvents).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/v1/events", s.handleEvents).Methods(http.MethodGet, http.MethodHead)
	s.nextProtoRoutes(r) // only in the watchdog_nextproto build (nextproto.go)
}

// serviceSpec is the body of PUT /v1/services/{id}: the config file's
// service entry, in JSON, with its field names and duration strings. A nil
// field was omitted and takes the committed defaults.
type serviceSpec struct {
	Timeout       *string   `json:"timeout"`
	Grace         *string   `json:"grace"`
	Actions       *[]string `json:"actions"`
	OnRecovered   *[]string `json:"on_recovered"`
	Repeat        *string   `json:"repeat"`
	MaxRepeats    *int      `json:"max_repeats"`
	FlapThreshold *int      `json:"flap_threshold"`
	FlapWindow    *string   `json:"flap_window"`
	Tags          *[]string `json:"tags"`
	Description   *string   `json:"description"`
	// Schedule and TZ replace Timeout; DependsOn (schedule.go).
	Schedule  *string   `json:"schedule"`
	TZ        *string   `json:"tz"`
	DependsOn *[]string `json:"depends_on"`
}

const specFields = "timeout, grace, actions, on_recovered, repeat, max_repeats, flap_threshold, flap_window, tags, description, schedule, tz, depends_on"

// handlePut defines a service through the API, or changes one the API or a
// heartbeat created. The config file wins: a service it defines is a 409.
// The same PUT twice changes nothing the second time (and proposes nothing).
func (s *Server) handlePut(r *http.Request) (int, any, error) {
	id := mux.Vars(r)["id"]
	spec, err := decodeSpec(r.Body)
	if err != nil {
		return 0, nil, &badRequest{err.Error()}
	}
	def, err := s.definition(spec)
	if err == nil {
		err = s.checkDependencies(id, def)
	}
	if err != nil {
		return 0, nil, &badRequest{err.Error()}
	}
	old, exists := s.state.Service(id)
	switch {
	case exists && old.Source == fsm.SourceConfig:
		return 0, nil, configOwned(id)
	case exists && old.Source == fsm.SourceAPI && old.Def.Equal(&def):
		return http.StatusOK, viewOf(old, true), nil
	}
	if !exists {
		// A definition is explicit, so auto_register does not stop it;
		// max_services does.
		release, err := s.node.Reserve(id, true)
		if err != nil {
			return 0, nil, err
		}
		defer release()
	}
	ctx, cancel := context.WithTimeout(r.Context(), commitTimeout)
	defer cancel()
	if err := s.apply(ctx, fsm.Define{At: s.node.Now().UnixNano(), Service: id, Def: def}); err != nil {
		return 0, nil, err
	}
	svc, ok := s.state.Service(id)
	if !ok {
		return 0, nil, fmt.Errorf("%w %q", fsm.ErrUnknownService, id)
	}
	status := http.StatusOK
	if !exists {
		status = http.StatusCreated
	}
	return status, viewOf(svc, true), nil
}

// handleDelete forgets a service, its history and any action still owed
// for it. A heartbeat afterwards brings it back, on the defaults.
func (s *Server) handleDelete(r *http.Request) (int, any, error) {
	id := mux.Vars(r)["id"]
	old, ok := s.state.Service(id)
	switch {
	case !ok:
		return 0, nil, fmt.Errorf("%w %q", fsm.ErrUnknownService, id)
	case old.Source == fsm.SourceConfig:
		return 0, nil, configOwned(id)
	}
	ctx, cancel := context.WithTimeout(r.Context(), commitTimeout)
	defer cancel()
	if err := s.apply(ctx, fsm.Delete{At: s.node.Now().UnixNano(), Service: id}); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]string{"id": id, "status": "deleted"}, nil
}

func configOwned(id string) error {
	return &conflict{fmt.Sprintf("service %q is defined in the config file, which wins over the API: change it there", id)}
}

// apply commits c and turns the FSM's refusal, if any, into the error.
func (s *Server) apply(ctx context.Context, c fsm.Command) error {
	resp, err := s.node.Apply(ctx, c)
	if errors.Is(err, fsm.ErrDefinedByConfig) {
		// The FSM's refusal (Node.Apply returns it as the error): a config
		// committed after the check above took the service.
		return &conflict{err.Error()}
	}
	if err != nil {
		return err
	}
	if rerr, ok := resp.(error); ok {
		if errors.Is(rerr, fsm.ErrDefinedByConfig) {
			return &conflict{rerr.Error()}
		}
		return rerr
	}
	return nil
}

// decodeSpec reads one JSON object, refusing unknown fields and anything
// after it. An empty body is an empty object: every field takes its default.
func decodeSpec(body io.Reader) (serviceSpec, error) {
	var spec serviceSpec
	data, err := io.ReadAll(body)
	if err != nil {
		return spec, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return spec, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err = dec.Decode(&spec)
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te) && te.Field == "":
		return spec, errors.New("the body must be a JSON object with the fields " + specFields)
	case errors.As(err, &te):
		return spec, fmt.Errorf("%s: expected %s, got a JSON %s", te.Field, jsonKind(te.Field), te.Value)
	case err != nil && strings.HasPrefix(err.Error(), "json: unknown field "):
		name, uerr := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if uerr != nil {
			name = "?"
		}
		return spec, fmt.Errorf("unknown field %s (known fields: %s)", quoteInput(name), specFields)
	case err != nil:
		return spec, fmt.Errorf("the body is not valid JSON: %w", err)
	case dec.More():
		return spec, errors.New("the body holds more than one JSON value")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return spec, errors.New("the body holds data after its JSON object")
	}
	return spec, nil
}

// jsonKind says what a field of serviceSpec holds.
func jsonKind(field string) string {
	switch field {
	case "timeout", "grace", "repeat", "flap_window":
		return `a duration string such as "30s"`
	case "max_repeats", "flap_threshold":
		return "a whole number"
	case "description", "schedule", "tz":
		return "a string"
	}
	return "a list of strings"
}

// definition resolves spec against the committed defaults and checks it,
// naming every field that is wrong.
func (s *Server) definition(spec serviceSpec) (fsm.Definition, error) {
	def := s.state.Defaults()
	var errs []error
	period := func(name string, v *string, dst *time.Duration, zeroOK bool) {
		if v != nil {
			errs = append(errs, parsePeriod(name, *v, dst, zeroOK))
		}
	}
	period("timeout", spec.Timeout, &def.Timeout, false)
	period("grace", spec.Grace, &def.Grace, true)
	period("repeat", spec.Repeat, &def.Repeat, true)
	period("flap_window", spec.FlapWindow, &def.FlapWindow, true)
	if spec.Actions != nil {
		def.Actions = *spec.Actions
		errs = append(errs, s.checkActions("actions", def.Actions))
	}
	if spec.OnRecovered != nil {
		def.OnRecovered = *spec.OnRecovered
		errs = append(errs, s.checkActions("on_recovered", def.OnRecovered))
	}
	if spec.MaxRepeats != nil {
		def.MaxRepeats = *spec.MaxRepeats
	}
	if spec.FlapThreshold != nil {
		def.FlapThreshold = *spec.FlapThreshold
	}
	if spec.Tags != nil {
		def.Tags = *spec.Tags
		errs = append(errs, checkTags(def.Tags))
	}
	if spec.Description != nil {
		def.Description = *spec.Description
		errs = append(errs, checkDescription(def.Description))
	}
	errs = append(errs, scheduleFields(spec, &def))
	if spec.DependsOn != nil {
		def.DependsOn = *spec.DependsOn
		errs = append(errs, checkDependsIDs(def.DependsOn))
	}
	return def, definitionError(def, errs)
}

// definitionError joins what is wrong with def, on one line: the field
// checks' errs, then what the state machine itself refuses.
func definitionError(def fsm.Definition, errs []error) error {
	if err := errors.Join(errs...); err != nil {
		return errors.New(strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	if err := def.Check(); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), fsm.ErrBadDefinition.Error()+": "))
	}
	return nil
}

// checkDefinition holds a whole definition, as a restore brings it in, to
// the rules definition holds the fields of a PUT to. checkActions is nil
// where the configuration's actions are not known.
func checkDefinition(def fsm.Definition, checkActions func(field string, names []string) error) error {
	errs := []error{
		checkPeriod("timeout", def.Timeout, def.Schedule != ""),
		checkPeriod("grace", def.Grace, true),
		checkPeriod("repeat", def.Repeat, true),
		checkPeriod("flap_window", def.FlapWindow, true),
		checkTags(def.Tags),
		checkDescription(def.Description),
		checkSchedule(def),
		checkDependsIDs(def.DependsOn),
	}
	if checkActions != nil {
		errs = append(errs, checkActions("actions", def.Actions), checkActions("on_recovered", def.OnRecovered))
	}
	return definitionError(def, errs)
}

func parsePeriod(name, v string, dst *time.Duration, zeroOK bool) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%s: invalid duration %s: write a number with a unit, such as \"30s\" or \"1m30s\"", name, quoteInput(v))
	}
	if err := checkPeriod(name, d, zeroOK); err != nil {
		return err
	}
	*dst = d
	return nil
}

// checkPeriod holds a duration to the bounds of a definition: positive (or,
// when zeroOK, 0 for off), at least fsm.MinPeriod but for a grace, at most
// fsm.MaxPeriod.
func checkPeriod(name string, d time.Duration, zeroOK bool) error {
	switch {
	case d == 0 && zeroOK:
	case d < 0 && zeroOK:
		return fmt.Errorf("%s: must not be negative, got %s", name, d)
	case d <= 0:
		return fmt.Errorf("%s: must be positive, got %s", name, d)
	case d < fsm.MinPeriod && name != "grace":
		return fmt.Errorf("%s: %s is too short: must be at least %s", name, d, fsm.MinPeriod)
	case d > fsm.MaxPeriod:
		return fmt.Errorf("%s: %s is too long: must be at most %s", name, d, fsm.MaxPeriod)
	}
	return nil
}

// checkActions makes sure a list names only actions the configuration
// defines: the API chooses among the operator's actions, it cannot add one.
func (s *Server) checkActions(field string, names []string) error {
	return checkActionsIn(s.access.actions, field, names)
}

// checkActionsIn checks names against defined, which is sorted.
func checkActionsIn(defined []string, field string, names []string) error {
	for i, name := range names {
		if _, found := slices.BinarySearch(defined, name); !found {
			return fmt.Errorf("%s: unknown action %s (defined: %s)", field, quoteInput(name), strings.Join(defined, ", "))
		}
		if slices.Contains(names[:i], name) {
			return fmt.Errorf("%s: action %s is listed more than once", field, quoteInput(name))
		}
	}
	return nil
}

func checkTags(tags []string) error {
	if len(tags) > fsm.MaxTags {
		return fmt.Errorf("tags: at most %d, got %d", fsm.MaxTags, len(tags))
	}
	for i, t := range tags {
		if !fsm.ValidID(t) {
			return fmt.Errorf("tags: invalid tag %s: want 1-128 of A-Za-z0-9._- (not . or ..)", quoteInput(t))
		}
		if slices.Contains(tags[:i], t) {
			return fmt.Errorf("tags: %q is listed more than once", t)
		}
	}
	return nil
}

func checkDescription(d string) error {
	switch {
	case len(d) > fsm.MaxDescription:
		return fmt.Errorf("description: at most %d bytes, got %d", fsm.MaxDescription, len(d))
	case !utf8.ValidString(d):
		return errors.New("description: not valid UTF-8")
	case strings.ContainsFunc(d, fsm.UnsafeInText):
		i := strings.IndexFunc(d, fsm.UnsafeInText)
		r, _ := utf8.DecodeRuneInString(d[i:])
		return fmt.Errorf("description: %U at byte %d: control, bidirectional and zero-width characters (newlines, tabs, escapes, U+202E…) are not allowed", r, i)
	}
	return nil
}
