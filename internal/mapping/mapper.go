package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/ojson"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// Mapper maps one message in one direction or the other. Returning no
// messages and no error means "dropped" (Ditto's empty list). A Mapper is
// safe for concurrent use.
type Mapper interface {
	// MapIncoming maps a consumed broker message to Ditto Protocol messages.
	MapIncoming(ext protocol.External) ([]protocol.Message, error)
	// MapOutgoing maps a Ditto Protocol message to messages to publish.
	MapOutgoing(msg protocol.Message) ([]protocol.External, error)
}

// Errors of this package; every error a mapper returns wraps one of them.
var (
	// ErrMappingFailed: the message could not be mapped (Ditto's
	// connectivity:message.mapping.failed); the caller drops it.
	ErrMappingFailed = errors.New("mapping: message mapping failed")
	// ErrTimeout: a script ran longer than its limit.
	ErrTimeout = errors.New("mapping: script execution timed out")
	// ErrConfiguration: a mapping definition cannot be instantiated
	// (Ditto's MessageMapperConfigurationInvalid/FailedException).
	ErrConfiguration = errors.New("mapping: mapper configuration invalid")
	// ErrConfigurationFailed: a definition Ditto refuses whether it is used
	// or not (MessageMapperConfigurationFailedException, a JSON error in its
	// options); it also matches ErrConfiguration. Other ErrConfiguration
	// failures (MessageMapperConfigurationInvalidException) only leave the
	// definition out, and a payloadMapping naming it fails.
	ErrConfigurationFailed = errors.New("mapping: mapper configuration failed")
	// ErrUnknownEngine: no engine of that alias.
	ErrUnknownEngine = errors.New("mapping: unknown mapping engine")
)

// JavaScriptLimits is ditto.connectivity.mapping.javascript.
type JavaScriptLimits struct {
	MaxScriptSizeBytes     int           // maxScriptSizeBytes, 50000
	MaxScriptExecutionTime time.Duration // maxScriptExecutionTime, 500ms
	MaxScriptStackDepth    int           // maxScriptStackDepth, 25
	// AllowUnsafeStandardObjects is allowUnsafeStandardObjects: in Ditto it
	// gives scripts Rhino's Java access; dittoconn has none to give, so the
	// binary refuses true (cmd/dittoconn).
	AllowUnsafeStandardObjects bool
	// CommonJSModulePath is commonJsModulePath: the directory require()
	// loads CommonJS modules from; "": no require.
	CommonJSModulePath string
	// MaxScriptAllocationBytes bounds one native allocation a script asks
	// for (a repeated string, a typed array); MaxScriptHeapGrowthBytes the
	// heap growth during one run. Not Ditto settings: the JVM's heap
	// bounds Ditto's scripts, goja has none (see jslimits.go).
	MaxScriptAllocationBytes int64
	MaxScriptHeapGrowthBytes int64
}

// Config is the service configuration the mappers read.
type Config struct {
	JavaScript JavaScriptLimits
	// MaxMappedInboundMessages / MaxMappedOutboundMessages are
	// ditto.connectivity.mapping.mapper-limits (10 each): a mapper producing
	// more fails.
	MaxMappedInboundMessages  int
	MaxMappedOutboundMessages int
	// MaxInboundPayloadBytes: a consumed payload larger than this fails
	// mapping before any mapper parses it (Ditto's limit for messages,
	// ditto.limits.messages.max-size, 250 kB). 0: no limit.
	MaxInboundPayloadBytes int
	// MaxPoolSize is ditto.connectivity.mapping.max-pool-size (5): the
	// most a connection's processorPoolSize takes effect with.
	MaxPoolSize int
	// PoolSize is the most runtimes a JavaScript mapper builds: the
	// connection's processorPoolSize clamped to MaxPoolSize (func
	// PoolSize), which is also how many messages its data plane maps at
	// once. 0 or 1: one. ForConnection sets it.
	PoolSize int
	// ConnectionID resolves {{ connection:id }} in conditions.
	ConnectionID string
	// Now is the clock for time: placeholders, CloudEvents and
	// Normalized; nil = time.Now.
	Now func() time.Time
}

// DefaultConfig returns Ditto's defaults.
func DefaultConfig() Config {
	return Config{
		JavaScript: JavaScriptLimits{
			MaxScriptSizeBytes:       50000,
			MaxScriptExecutionTime:   500 * time.Millisecond,
			MaxScriptStackDepth:      25,
			MaxScriptAllocationBytes: 64 << 20,
			MaxScriptHeapGrowthBytes: 512 << 20,
		},
		MaxMappedInboundMessages:  10,
		MaxMappedOutboundMessages: 10,
		MaxInboundPayloadBytes:    250 * 1000,
		MaxPoolSize:               5,
	}
}

// PoolSize is the mapping parallelism of a connection with
// processorPoolSize n: n, at most cfg.MaxPoolSize (Ditto's
// InboundMappingSink clamps it so), at least 1.
func PoolSize(n int, cfg Config) int {
	if cfg.MaxPoolSize > 0 && n > cfg.MaxPoolSize {
		n = cfg.MaxPoolSize
	}
	return max(n, 1)
}

func (c Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Options are a mapping definition's options merged over the engine's
// defaults (configured values win, as MergedJsonObjectMap does).
type Options struct{ o *ojson.Object }

func (op Options) raw(key string) (any, bool) {
	if op.o == nil {
		return nil, false
	}
	return op.o.Get(key)
}

// String returns an option as MessageMapperConfiguration.findProperty does
// (JsonValue.formatAsString).
func (op Options) String(key string) (string, bool) {
	v, ok := op.raw(key)
	if !ok {
		return "", false
	}
	return gojson.FormatAsString(v), true
}

// Bool parses an option as Java's Boolean.parseBoolean.
func (op Options) Bool(key string, def bool) bool {
	s, ok := op.String(key)
	if !ok {
		return def
	}
	return strings.EqualFold(s, "true")
}

// object returns an option that must be a JSON object.
func (op Options) object(key string) (*ojson.Object, bool) {
	v, ok := op.raw(key)
	if !ok {
		return nil, false
	}
	o, ok := v.(*ojson.Object)
	return o, ok
}

// engine is one entry of the engine table.
type engine struct {
	// mandatory: the engine needs options, so its alias cannot be used
	// directly in payloadMapping (isConfigurationMandatory).
	mandatory bool
	defaults  string // default options as JSON
	build     func(id string, opts Options, cfg Config) (Mapper, error)
}

// dittoDefaults is DittoMessageMapper.DEFAULT_OPTIONS: Hono notifications
// without payload are not Ditto Protocol and are skipped, not failed.
const dittoDefaults = `{"content-type-blocklist":"application/vnd.eclipse-hono-empty-notification,application/vnd.eclipse-hono-device-provisioning-notification,application/vnd.eclipse-hono-dc-notification+json,application/vnd.eclipse-hono-delivery-failure-notification+json"}`

// engines is the registry of built-in mapping engines by alias.
var engines = map[string]engine{
	"Ditto":                      {defaults: dittoDefaults, build: newDittoMapper},
	"JavaScript":                 {mandatory: true, build: newJavaScriptMapper},
	"Normalized":                 {build: newNormalizedMapper},
	"RawMessage":                 {defaults: rawDefaults, build: newRawMessageMapper},
	"ConnectionStatus":           {mandatory: true, build: newConnectionStatusMapper},
	"ImplicitThingCreation":      {mandatory: true, build: newImplicitThingCreationMapper},
	"UpdateTwinWithLiveResponse": {defaults: updateTwinDefaults, build: newUpdateTwinMapper},
	"CloudEvents":                {build: newCloudEventsMapper},
}

// Engines lists the aliases of the built-in engines, sorted.
func Engines() []string {
	out := make([]string, 0, len(engines))
	for k := range engines {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// New instantiates one mapping definition: the engine's mapper with its
// options merged over the engine's defaults, wrapped with the definition's
// conditions, content-type blocklist and message limits.
func New(id string, def model.MappingDefinition, cfg Config) (*Configured, error) {
	e, ok := engines[def.MappingEngine]
	if !ok {
		return nil, fmt.Errorf("%w: <%s> of mapper <%s>", ErrUnknownEngine, def.MappingEngine, id)
	}
	opts, err := mergeOptions(e.defaults, def.Options)
	if err != nil {
		return nil, configFailed("options of mapper <%s>: %v", id, err)
	}
	m, err := e.build(id, opts, cfg)
	if err != nil {
		return nil, err
	}
	c := &Configured{
		ID:                 id,
		Engine:             def.MappingEngine,
		Mapper:             m,
		incomingConditions: compileConditions(sortedValues(def.IncomingConditions), externalScope),
		outgoingConditions: compileConditions(sortedValues(def.OutgoingConditions), signalScope),
		cfg:                cfg,
	}
	if bl, ok := opts.String("content-type-blocklist"); ok {
		c.blocklist = splitList(bl)
	}
	return c, nil
}

func mergeOptions(defaults string, configured json.RawMessage) (Options, error) {
	merged := ojson.NewObject()
	if len(configured) > 0 {
		o, err := gojson.ParseObject(configured)
		if err != nil {
			return Options{}, err
		}
		merged = o
	}
	if defaults != "" {
		d, err := gojson.ParseObject([]byte(defaults))
		if err != nil {
			return Options{}, err
		}
		for _, k := range d.Keys() {
			if _, ok := merged.Get(k); !ok {
				merged.Set(k, d.Value(k))
			}
		}
	}
	return Options{o: merged}, nil
}

func sortedValues(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(m))
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out
}

func splitList(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

// mappingFailed builds an ErrMappingFailed error.
func mappingFailed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMappingFailed, fmt.Sprintf(format, args...))
}

// configFailure is an ErrConfigurationFailed error with Ditto's message and
// description.
type configFailure struct{ message, description string }

func (e *configFailure) Error() string {
	return ErrConfigurationFailed.Error() + ": " + e.message
}

func (e *configFailure) Is(target error) bool {
	return target == ErrConfiguration || target == ErrConfigurationFailed
}

// configFailed builds an ErrConfigurationFailed error with the description
// of Ditto's MessageMapperConfigurationFailedException.
func configFailed(format string, args ...any) error {
	return &configFailure{message: fmt.Sprintf(format, args...),
		description: "Check the configuration options of your mapper for errors."}
}

// configInvalid builds an ErrConfiguration error.
func configInvalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConfiguration, fmt.Sprintf(format, args...))
}
