// The error catalogue, in the style of fastify's FST_ERR_*: every error Attune sends has a
// stable `code` (one HTTP status each) and every entry of its `details` a `reason` from the
// table below, each reason belonging to exactly one code. It is data, so the README table
// (scripts/error-catalogue.ts), the docs and the tests enumerate it; `Reason` is derived from
// it, so a reason that is not catalogued does not compile, and `ReasonFor<C>` keeps a reason
// under its own code (`new AttuneError('conflict', …, [{ reason: 'required' }])` does not
// compile either). Free text (Ajv's "must be >= 250", a parser's message) goes in a detail's
// `message`, never in `reason`.

/** The error codes: the `code` of every error body, each with its one HTTP status. */
export const ErrorCodes = {
  validation_error: { status: 400, description: 'The request (body, query, path, message or file) is malformed or out of range.' },
  unauthorized: { status: 401, description: 'No valid bearer token.' },
  forbidden: { status: 403, description: 'The token lacks a scope or the resource belongs to someone else.' },
  // The coherence platform document's own specific codes (../shared/seeds 000, "Common Error
  // Codes"): a client written against it checks `error.code === 'mesh_full'`, so these are codes,
  // each sharing its status with the generic code above (which the OpenAPI text names first).
  insufficient_tier: { status: 403, description: 'The feature needs a higher tier than the token\'s (coherence platform code).' },
  not_found: { status: 404, description: 'No such route or resource (for this user).' },
  not_acceptable: { status: 406, description: 'The representation asked for (e.g. a report format) is not produced.' },
  request_timeout: { status: 408, description: 'The request did not arrive in time.' },
  conflict: { status: 409, description: 'The resource is in a state that refuses the change.' },
  mesh_full: { status: 409, description: 'The group (mesh) session is at capacity (coherence platform code).' },
  // Catalogued from the same table so a client switching on them compiles against Attune's
  // list; Attune raises neither yet (no protocol is gated by coherence level, and devices are
  // sensors that sync, not paired connections): issue 12, errors.
  device_not_connected: { status: 400, description: 'The device is not paired/connected (coherence platform code; not raised by Attune yet).' },
  insufficient_coherence_level: { status: 403, description: 'The protocol needs a higher coherence level than the caller\'s (coherence platform code; not raised by Attune yet).' },
  payload_too_large: { status: 413, description: 'The body, file or form is larger than allowed.' },
  uri_too_long: { status: 414, description: 'The URL (a path segment) is longer than allowed.' },
  unsupported_media_type: { status: 415, description: 'The body has a content type this route does not take.' },
  upgrade_required: { status: 426, description: 'A WebSocket route asked without a WebSocket upgrade.' },
  rate_limited: { status: 429, description: 'Too many requests or readings; retry later.' },
  header_too_large: { status: 431, description: 'The request line and headers are larger than allowed.' },
  internal_error: { status: 500, description: 'A fault in Attune.' },
  unavailable: { status: 503, description: 'A dependency is unavailable or the server is shutting down; retry later.' },
} as const satisfies Record<string, { status: number; description: string }>;

export type ErrorCode = keyof typeof ErrorCodes;

interface Entry<C extends ErrorCode> {
  code: C;
  status: (typeof ErrorCodes)[C]['status'];
  description: string;
}
const r = <C extends ErrorCode>(code: C, description: string): Entry<C> => ({ code, status: ErrorCodes[code].status, description });

/** Every `details[].reason` (and dead-letter `reason_code`), with its code, status and meaning. */
export const Reasons = {
  // Validation of bodies, queries and path parameters (Ajv keywords map onto these).
  required: r('validation_error', 'A required field or part is missing.'),
  invalid_type: r('validation_error', 'A field has the wrong JSON type.'),
  out_of_range: r('validation_error', 'A number or time lies outside its allowed range.'),
  invalid_length: r('validation_error', 'A string, array or object is too short or too long.'),
  invalid_format: r('validation_error', 'A string does not match its pattern or format.'),
  invalid_value: r('validation_error', 'A value is not one of those allowed.'),
  unknown_field: r('validation_error', 'A field that the schema does not define.'),
  invalid_json: r('validation_error', 'The body or message is not valid JSON (an empty body, or one of whitespace only, is no body: a route that takes none answers as without it).'),
  json_too_large: r('validation_error', 'A stored JSON field (metadata, settings) is larger than allowed (16 KB by default).'),
  json_too_deep: r('validation_error', 'JSON nested deeper than allowed (a body 64 levels, a stored field 32).'),
  invalid_text: r('validation_error', 'Text with a NUL character (U+0000), or stored JSON with an unpaired UTF-16 surrogate: neither can be stored.'),
  invalid_content_length: r('validation_error', 'Content-Length does not match the body.'),
  malformed_request: r('validation_error', 'The HTTP request or its URL cannot be parsed.'),
  invalid_timestamp: r('validation_error', 'Not an ISO-8601 timestamp with a zone, or epoch milliseconds.'),
  invalid_date: r('validation_error', 'Not a date YYYY-MM-DD (or, where allowed, an ISO-8601 timestamp).'),
  invalid_range: r('validation_error', 'A time range is reversed or too long.'),
  invalid_cursor: r('validation_error', 'Not a cursor returned by this API.'),
  constraint_violation: r('validation_error', 'A value breaks a database constraint.'),
  // Devices, sessions and readings.
  not_registered: r('validation_error', 'The device is not registered to the caller.'),
  unknown_device: r('not_found', 'The device sending readings is not registered.'),
  unknown_session: r('validation_error', 'A reading names a session that does not exist.'),
  session_of_another_device: r('validation_error', 'A reading names a session recorded by another device.'),
  outside_session: r('validation_error', 'A reading is dated outside the session it names (before its start less the allowed lateness, or after its end plus the grace).'),
  too_many_readings: r('validation_error', 'More readings in one message than allowed.'),
  // Speech audio: uploads, WAV files and live streams.
  not_multipart: r('unsupported_media_type', 'An upload that is not multipart/form-data.'),
  unexpected_file_field: r('validation_error', 'A file part in a field other than "file".'),
  not_a_file: r('validation_error', 'Field "file" is not a file part.'),
  too_many_files: r('validation_error', 'More than one file in an upload.'),
  too_many_fields: r('payload_too_large', 'More form fields than allowed.'),
  invalid_field_name: r('validation_error', 'A form field name that is not allowed.'),
  malformed_multipart: r('validation_error', 'The multipart body cannot be parsed.'),
  invalid_metadata: r('validation_error', 'Field "metadata" is not a JSON object.'),
  truncated_upload: r('validation_error', 'The upload ended before the file did.'),
  too_large: r('payload_too_large', 'A file or field is larger than allowed.'),
  too_long: r('payload_too_large', 'Audio is longer than allowed.'),
  truncated_header: r('validation_error', 'A WAV file or bus record ends inside its header.'),
  truncated_data: r('validation_error', 'A WAV data chunk is shorter than it says.'),
  partial_sample_frame: r('validation_error', 'A WAV file ends inside a sample frame.'),
  non_finite_sample: r('validation_error', 'A float WAV sample that is NaN or infinite (at_s names the first).'),
  not_riff: r('validation_error', 'The file is not RIFF.'),
  not_wave: r('validation_error', 'The RIFF file is not WAVE.'),
  missing_fmt_chunk: r('validation_error', 'A WAV file without a fmt chunk before its data.'),
  missing_data_chunk: r('validation_error', 'A WAV file without a data chunk.'),
  duplicate_fmt_chunk: r('validation_error', 'A WAV file with two fmt chunks.'),
  bad_fmt_size: r('validation_error', 'A WAV fmt chunk of an impossible size.'),
  bad_chunk_id: r('validation_error', 'A WAV chunk id that is not four printable characters.'),
  bad_extensible_fmt: r('validation_error', 'A WAVE_FORMAT_EXTENSIBLE fmt chunk that is too short.'),
  bad_channel_count: r('validation_error', 'A WAV file with no channels.'),
  bad_block_align: r('validation_error', 'A WAV block align that does not match channels and bits.'),
  unsupported_container: r('unsupported_media_type', 'A container other than RIFF/WAVE (e.g. RF64).'),
  unsupported_encoding: r('unsupported_media_type', 'A WAV file that is not 16-bit PCM.'),
  unsupported_sample_rate: r('unsupported_media_type', 'A WAV file whose sample rate is outside those accepted.'),
  unsupported_channel_count: r('unsupported_media_type', 'A WAV file with more channels than accepted.'),
  unsupported_format: r('unsupported_media_type', 'An audio file in a format Attune does not decode (MP4/AAC, FLAC, …; found by its first bytes): details[].accepted lists the formats it takes.'),
  unsupported_codec: r('unsupported_media_type', 'An Ogg or WebM file whose audio is not Opus (Vorbis, AAC, …).'),
  unsupported_report_format: r('not_acceptable', 'A report format Attune does not produce (pdf): details[].message lists those it does (json, csv).'),
  undecodable_audio: r('validation_error', 'An MP3, Ogg or WebM file with no decodable audio, a broken container structure, or audio the decoder refused.'),
  truncated_audio: r('validation_error', 'An MP3, Ogg or WebM file that ends before its audio does (a cut-off upload or file).'),
  audio_exists: r('conflict', 'The speech session already has (or had) audio.'),
  stream_already_open: r('conflict', 'The speech session already has an open audio stream.'),
  session_busy: r('conflict', 'The speech session is recording or processing: it can be deleted once completed or failed.'),
  not_computed: r('not_found', 'The result is not computed (yet, or the session failed).'),
  unknown_type: r('validation_error', 'A socket message of an unknown type.'),
  already_started: r('validation_error', 'A second start message on one socket.'),
  audio_before_start: r('validation_error', 'Audio sent before the start message.'),
  stop_before_start: r('validation_error', 'A stop message before the start message.'),
  too_much_pending_audio: r('rate_limited', 'More audio waiting for the bus than allowed; send at real-time pace.'),
  // Authentication and authorisation.
  missing_token: r('unauthorized', 'No bearer token (header, ?token= or authenticate message).'),
  invalid_token: r('unauthorized', 'The token is malformed, badly signed, expired or lacks a claim.'),
  token_expired: r('unauthorized', 'The socket token expired without a fresh one.'),
  token_too_long_lived: r('unauthorized', 'A token without iat that lives longer than allowed.'),
  auth_timeout: r('unauthorized', 'No authenticate message within 10 s of the socket opening.'),
  principal_changed: r('unauthorized', 'A fresh socket token names another user or organisation.'),
  undeclared_route: r('unauthorized', 'The route declares no authentication, so it is refused.'),
  missing_scope: r('forbidden', 'The token lacks the scope the route needs.'),
  other_organisation: r('forbidden', "The path names an organisation other than the token's (organisation analytics)."),
  invalid_api_key: r('unauthorized', 'The API key is unknown, revoked or expired, its secret is wrong, or X-AUF-Client-ID / client_id names another key.'),
  scope_not_held: r('forbidden', "An API key asked for a scope its creator's token does not hold."),
  api_key_credential: r('forbidden', 'API keys are created with a token of a person, not with an API key or a token exchanged for one.'),
  unsupported_grant_type: r('validation_error', 'POST /v1/auth/token takes only grant_type=client_credentials (people log in at the identity provider).'),
  private_address: r('validation_error', 'A webhook URL whose host is or resolves to a loopback, private or link-local address (allowed only with ATTUNE_WEBHOOKS_ALLOW_PRIVATE or ATTUNE_WEBHOOKS_ALLOW_HOSTS).'),
  jwks_unavailable: r('unavailable', "The identity provider's keys cannot be read."),
  // Entities.
  not_found: r('not_found', 'No such resource visible to the caller.'),
  no_route: r('not_found', 'No route for this method and path.'),
  already_registered: r('conflict', 'The device is registered to another user.'),
  version_conflict: r('conflict', 'The record changed since the version given (optimistic concurrency).'),
  delivery_pending: r('conflict', 'A webhook delivery still pending (due, or being attempted) cannot be sent again by hand: only a delivered or failed one.'),
  device_quota: r('conflict', "A new device beyond the devices per user of the token's tier (free 2, plus 5, pro 20)."),
  mesh_full: r('mesh_full', 'The mesh session has as many participants present as its max_participants.'),
  mesh_ended: r('conflict', 'The mesh session has ended: it can no longer be joined.'),
  not_invited: r('forbidden', 'The mesh session is private and the caller is neither its host nor invited.'),
  not_host: r('forbidden', 'Only the mesh session\'s host (or an organisation admin) may do this.'),
  insufficient_tier: r('insufficient_tier', "The mesh session requires a higher tier than the token's (join_requirements.min_tier)."),
  device_not_connected: r('device_not_connected', 'Coherence platform code: the device (a Solas) is not paired. Catalogued for clients of the document; Attune does not raise it yet.'),
  insufficient_coherence_level: r('insufficient_coherence_level', "Coherence platform code: the protocol needs a higher coherence level. Catalogued for clients of the document; Attune does not gate protocols by level yet."),
  insufficient_coherence_history: r('forbidden', "The caller's average coherence over the last 30 days is below the mesh session's join_requirements.min_coherence_history."),
  // HTTP transport (Fastify and Node's parser).
  body_too_large: r('payload_too_large', 'The request body is larger than the body limit.'),
  uri_too_long: r('uri_too_long', 'A path segment is longer than the longest path parameter.'),
  message_too_large: r('payload_too_large', 'A WebSocket message is larger than allowed (the socket closes with 4413).'),
  header_too_large: r('header_too_large', 'The request line and headers exceed the server limit.'),
  unsupported_content_type: r('unsupported_media_type', 'A body whose content type the route does not accept.'),
  websocket_only: r('upgrade_required', 'A plain HTTP request to a WebSocket route (send Upgrade: websocket).'),
  request_timeout: r('request_timeout', 'The request was not received in time.'),
  ping_timeout: r('request_timeout', 'A WebSocket did not answer a ping before the next one was due (the socket closes with 4408).'),
  heartbeat_timeout: r('request_timeout', 'A live WebSocket client that sends heartbeat messages sent none for 120 s (the socket closes with 4408).'),
  idle_timeout: r('request_timeout', 'An ingest WebSocket sent no message for ATTUNE_WS_IDLE_TIMEOUT_S (the socket closes with 4408).'),
  rate_limited: r('rate_limited', "Over a rate limit (the token's tier: requests a minute or a second; a device's or a user's readings per second): Retry-After and retry_after_s say when to retry."),
  socket_quota: r('rate_limited', "A WebSocket beyond the open sockets per user of the token's tier (free 1, plus 2, pro 5): closed with 4029."),
  shutting_down: r('unavailable', 'The server is shutting down.'),
  stream_lost: r('unavailable', 'A live audio socket closed with 4503: this server could not renew the stream claim within ATTUNE_AUDIO_LEASE_S and another process ended the stream; the audio received until then is analysed.'),
  ingest_lost: r('unavailable', "An upload failed (error.code unavailable): the process receiving it stopped before its end and another ended its stream after ATTUNE_AUDIO_LEASE_S; upload the file again."),
  stt_busy: r('unavailable', 'POST /v1/speech/stt: as many recognitions are running or waiting in this process as it takes; retry after Retry-After.'),
  // Bus, schema registry and storage.
  bus_publish_failed: r('unavailable', 'The bus did not accept a record.'),
  bus_full: r('unavailable', 'The embedded bus is full.'),
  no_leader: r('unavailable', 'Kafka topics have no leaders yet.'),
  log_write_failed: r('unavailable', 'The embedded bus could not write its log.'),
  corrupt_segment: r('internal_error', 'An embedded bus log segment is corrupt.'),
  not_assigned: r('conflict', 'A commit for a partition not assigned to the consumer.'),
  invalid_topic_name: r('validation_error', 'A topic name that is not allowed.'),
  invalid_offset: r('validation_error', 'An offset that is not a non-negative 64-bit integer.'),
  store_unavailable: r('unavailable', 'The store (ClickHouse) cannot be reached or refused a query.'),
  database_unavailable: r('unavailable', 'PostgreSQL (DATABASE_URL) cannot be reached or dropped the connection; retry after Retry-After.'),
  write_failed: r('unavailable', 'Rows could not be written after retries.'),
  registry_error: r('unavailable', 'The schema registry cannot be reached or refused a request.'),
  unknown_schema_id: r('not_found', 'A record names a schema id the registry does not know.'),
  schema_not_loaded: r('not_found', 'A record names a schema id not loaded by this process.'),
  unregistered_schema: r('not_found', 'A schema that is not registered under its subject.'),
  fingerprint_mismatch: r('conflict', 'A schema file differs from the fingerprint recorded for it.'),
  incompatible_schema: r('conflict', 'The schema registry refused a schema as incompatible with the versions before it under its subject.'),
  invalid_schema: r('validation_error', 'The schema registry refused a schema as not valid Avro.'),
  bad_magic_byte: r('validation_error', 'A bus record without the schema-registry magic byte.'),
  malformed_body: r('validation_error', 'A bus record whose Avro body cannot be decoded.'),
  bad_migration_name: r('internal_error', 'A migration file name that is not NNNN_name.sql.'),
  duplicate_migration_version: r('internal_error', 'Two migration files with one version.'),
  unknown_placeholder: r('internal_error', 'A migration with an unknown placeholder.'),
  migration_checksum_mismatch: r('conflict', 'An applied migration differs from its file.'),
  insecure_permissions: r('internal_error', 'Startup refused: the data directory or a key file is open to group or others.'),
  weak_key: r('internal_error', 'Startup refused: a key file shorter than 32 bytes.'),
  // Dead letters (reason_code on attune.deadletter.v1) and worker inputs.
  undecodable: r('validation_error', 'Dead letter: a bus record that cannot be decoded.'),
  invalid_reading: r('validation_error', 'Dead letter: a reading the coherence worker refuses.'),
  implausible_rr: r('validation_error', 'Dead letter: a reading on the bus with an RR interval outside 250–2500 ms.'),
  implausible_hr: r('validation_error', 'Dead letter: a reading on the bus with a heart rate outside 25–250 bpm.'),
  implausible_timestamp: r('validation_error', 'Dead letter: a reading on the bus dated before 2000 or over 5 minutes after it was received.'),
  future_beat: r('validation_error', "Dead letter: a reading far ahead of its session's event-time clock that the next readings did not confirm (quarantined)."),
  invalid_record: r('validation_error', 'A bus record (or dead letter) that is invalid.'),
  // Internal contracts (reach clients only as internal_error/unavailable).
  invalid_argument: r('validation_error', 'A function or option got a value outside its domain (internal).'),
  model_missing: r('unavailable', 'A model file is missing.'),
  model_unusable: r('unavailable', 'A model file cannot be used (shape, metadata, build).'),
} as const;

export type Reason = keyof typeof Reasons;

/** The reasons catalogued under error code C (all of them when C is the whole union). */
export type ReasonFor<C extends ErrorCode> = { [K in Reason]: (typeof Reasons)[K]['code'] extends C ? K : never }[Reason];

export const isReason = (s: unknown): s is Reason => typeof s === 'string' && Object.hasOwn(Reasons, s);

export interface CatalogueRow {
  code: ErrorCode;
  status: number;
  reason: Reason;
  description: string;
}

/** The catalogue as rows, sorted by status, code and reason. */
export function catalogueRows(): CatalogueRow[] {
  return (Object.keys(Reasons) as Reason[])
    .map((reason) => ({ reason, code: Reasons[reason].code as ErrorCode, status: Reasons[reason].status as number, description: Reasons[reason].description }))
    .sort((a, b) => a.status - b.status || a.code.localeCompare(b.code) || a.reason.localeCompare(b.reason));
}

/** The README's Markdown table: code, status, reason, description. */
export function catalogueMarkdown(): string {
  const lines = ['| code | status | reason | description |', '|---|---|---|---|'];
  for (const row of catalogueRows()) lines.push(`| \`${row.code}\` | ${row.status} | \`${row.reason}\` | ${row.description.replace(/\|/g, '\\|')} |`);
  return lines.join('\n') + '\n';
}
