package config

// envVar ties one environment variable to the field it overrides, so the list
// printed by --help and the code that reads the environment cannot drift.
type envVar struct {
	name, help string
	field      func(*Config) *string
}

var envVars = []envVar{
	{"ANPRD_STATE_DIR", "overrides state.dir (where the database and evidence live)",
		func(c *Config) *string { return &c.State.Dir }},
	{"ANPRD_STATUS_LISTEN", "overrides status.listen (host:port of the health and metrics listener)",
		func(c *Config) *string { return &c.Status.Listen }},
	{"ANPRD_LOG_LEVEL", "overrides log.level (debug, info, warn or error)",
		func(c *Config) *string { return &c.Log.Level }},
	{"ANPRD_LOG_FORMAT", "overrides log.format (auto, json or console)",
		func(c *Config) *string { return &c.Log.Format }},
	{"ANPRD_ONNXRUNTIME_LIBRARY", "overrides reader.onnxruntime_library (path of libonnxruntime.so)",
		func(c *Config) *string { return &c.Reader.ONNXRuntimeLibrary }},
	{"ANPRD_MODELS_DIR", "overrides reader.models_dir (folder of the plate reader's ONNX models)",
		func(c *Config) *string { return &c.Reader.ModelsDir }},
}

// EnvOverrides lists the environment variables ApplyEnv reads, with a
// one-line description each (for the README and --help). An empty value
// means no override; a relative path is taken from the config file's
// directory, like one written in the file.
var EnvOverrides = func() []struct{ Name, Help string } {
	out := make([]struct{ Name, Help string }, len(envVars))
	for i, v := range envVars {
		out[i].Name, out[i].Help = v.name, v.help
	}
	return out
}()

// ApplyEnv applies the documented environment overrides (EnvOverrides); this
// is the one place the environment is read for config. getenv is os.Getenv in
// the daemon and a map in tests; nil applies nothing.
func (c *Config) ApplyEnv(getenv func(string) string) {
	if getenv == nil {
		return
	}
	for _, v := range envVars {
		if s := getenv(v.name); s != "" {
			*v.field(c) = s
		}
	}
}
