// The client's public face includes its session's vocabulary: requests, results, settings
// and errors are `MQTTSession`'s, re-exported so a user of the client imports one module.

@_exported import MQTTSession
