// Body schemas of the decoded APIs, per version, as field lists read by
// `BodyDecoder`. Fields outside [lo, hi] are absent in that version.

/// A field type.
indirect enum FieldType: Sendable {
    case i8, i16, i32, i64, bool, str, nstr, bytes, uuid
    /// An error code (i16): the first non-zero one becomes the entry status.
    case err
    /// A topic name (nullable string) collected for the summary.
    case topic
    case i32s, i64s, strs
    /// An array of topic names.
    case topics
    /// Record batches (nullable bytes).
    case records
    case arr([Field])
}

struct Field: Sendable {
    let name: StaticString
    let type: FieldType
    let lo: Int16
    let hi: Int16
}

func f(_ name: StaticString, _ type: FieldType, _ lo: Int16 = 0, _ hi: Int16 = .max) -> Field {
    Field(name: name, type: type, lo: lo, hi: hi)
}

/// Highest version whose body we know, per decoded API key.
let decodedMaxVersion: [Int16: Int16] = [
    0: 11, 1: 16, 2: 9, 3: 12, 8: 9, 9: 9, 10: 5, 11: 9, 12: 4, 13: 5, 14: 5, 18: 4, 19: 7, 20: 6,
]

let requestSchemas: [Int16: [Field]] = [
    18: [f("clientSoftwareName", .str, 3), f("clientSoftwareVersion", .str, 3)],
    3: [
        f("topics", .arr([f("topicId", .uuid, 10), f("name", .topic)])),
        f("allowAutoTopicCreation", .bool, 4), f("includeClusterAuthorizedOperations", .bool, 8, 10),
        f("includeTopicAuthorizedOperations", .bool, 8),
    ],
    0: [
        f("transactionalId", .nstr, 3), f("acks", .i16), f("timeoutMs", .i32),
        f("topics", .arr([
            f("name", .topic), f("partitions", .arr([f("index", .i32), f("records", .records)])),
        ])),
    ],
    1: [
        f("replicaId", .i32, 0, 14), f("maxWaitMs", .i32), f("minBytes", .i32), f("maxBytes", .i32, 3),
        f("isolationLevel", .i8, 4), f("sessionId", .i32, 7), f("sessionEpoch", .i32, 7),
        f("topics", .arr([
            f("topic", .topic, 0, 12), f("topicId", .uuid, 13),
            f("partitions", .arr([
                f("partition", .i32), f("currentLeaderEpoch", .i32, 9), f("fetchOffset", .i64),
                f("lastFetchedEpoch", .i32, 12), f("logStartOffset", .i64, 5), f("partitionMaxBytes", .i32),
            ])),
        ])),
        f("forgottenTopicsData", .arr([f("topic", .topic, 0, 12), f("topicId", .uuid, 13), f("partitions", .i32s)]), 7),
        f("rackId", .str, 11),
    ],
    2: [
        f("replicaId", .i32), f("isolationLevel", .i8, 2),
        f("topics", .arr([
            f("name", .topic),
            f("partitions", .arr([
                f("partitionIndex", .i32), f("currentLeaderEpoch", .i32, 4), f("timestamp", .i64),
                f("maxNumOffsets", .i32, 0, 0),
            ])),
        ])),
    ],
    10: [f("key", .str, 0, 3), f("keyType", .i8, 1), f("coordinatorKeys", .strs, 4)],
    11: [
        f("groupId", .str), f("sessionTimeoutMs", .i32), f("rebalanceTimeoutMs", .i32, 1), f("memberId", .str),
        f("groupInstanceId", .nstr, 5), f("protocolType", .str),
        f("protocols", .arr([f("name", .str), f("metadata", .bytes)])), f("reason", .nstr, 8),
    ],
    14: [
        f("groupId", .str), f("generationId", .i32), f("memberId", .str), f("groupInstanceId", .nstr, 3),
        f("protocolType", .nstr, 5), f("protocolName", .nstr, 5),
        f("assignments", .arr([f("memberId", .str), f("assignment", .bytes)])),
    ],
    12: [f("groupId", .str), f("generationId", .i32), f("memberId", .str), f("groupInstanceId", .nstr, 3)],
    13: [
        f("groupId", .str), f("memberId", .str, 0, 2),
        f("members", .arr([f("memberId", .str), f("groupInstanceId", .nstr), f("reason", .nstr, 5)]), 3),
    ],
    8: [
        f("groupId", .str), f("generationIdOrMemberEpoch", .i32, 1), f("memberId", .str, 1),
        f("groupInstanceId", .nstr, 7), f("retentionTimeMs", .i64, 2, 4),
        f("topics", .arr([
            f("name", .topic),
            f("partitions", .arr([
                f("partitionIndex", .i32), f("committedOffset", .i64), f("committedLeaderEpoch", .i32, 6),
                f("commitTimestamp", .i64, 1, 1), f("committedMetadata", .nstr),
            ])),
        ])),
    ],
    9: [
        f("groupId", .str, 0, 7),
        f("topics", .arr([f("name", .topic), f("partitionIndexes", .i32s)]), 0, 7),
        f("groups", .arr([
            f("groupId", .str), f("memberId", .nstr, 9), f("memberEpoch", .i32, 9),
            f("topics", .arr([f("name", .topic), f("partitionIndexes", .i32s)])),
        ]), 8),
        f("requireStable", .bool, 7),
    ],
    19: [
        f("topics", .arr([
            f("name", .topic), f("numPartitions", .i32), f("replicationFactor", .i16),
            f("assignments", .arr([f("partitionIndex", .i32), f("brokerIds", .i32s)])),
            f("configs", .arr([f("name", .str), f("value", .nstr)])),
        ])),
        f("timeoutMs", .i32), f("validateOnly", .bool, 1),
    ],
    20: [
        f("topicNames", .topics, 0, 5), f("topics", .arr([f("name", .topic), f("topicId", .uuid)]), 6),
        f("timeoutMs", .i32),
    ],
]

let responseSchemas: [Int16: [Field]] = [
    18: [
        f("errorCode", .err),
        f("apiKeys", .arr([f("apiKey", .i16), f("minVersion", .i16), f("maxVersion", .i16)])),
        f("throttleTimeMs", .i32, 1),
    ],
    3: [
        f("throttleTimeMs", .i32, 3),
        f("brokers", .arr([f("nodeId", .i32), f("host", .str), f("port", .i32), f("rack", .nstr, 1)])),
        f("clusterId", .nstr, 2), f("controllerId", .i32, 1),
        f("topics", .arr([
            f("errorCode", .err), f("name", .topic), f("topicId", .uuid, 10), f("isInternal", .bool, 1),
            f("partitions", .arr([
                f("errorCode", .err), f("partitionIndex", .i32), f("leaderId", .i32), f("leaderEpoch", .i32, 7),
                f("replicaNodes", .i32s), f("isrNodes", .i32s), f("offlineReplicas", .i32s, 5),
            ])),
            f("topicAuthorizedOperations", .i32, 8),
        ])),
        f("clusterAuthorizedOperations", .i32, 8, 10), f("errorCode", .err, 13),
    ],
    0: [
        f("responses", .arr([
            f("name", .topic),
            f("partitions", .arr([
                f("index", .i32), f("errorCode", .err), f("baseOffset", .i64), f("logAppendTimeMs", .i64, 2),
                f("logStartOffset", .i64, 5),
                f("recordErrors", .arr([f("batchIndex", .i32), f("batchIndexErrorMessage", .nstr)]), 8),
                f("errorMessage", .nstr, 8),
            ])),
        ])),
        f("throttleTimeMs", .i32, 1),
    ],
    1: [
        f("throttleTimeMs", .i32, 1), f("errorCode", .err, 7), f("sessionId", .i32, 7),
        f("responses", .arr([
            f("topic", .topic, 0, 12), f("topicId", .uuid, 13),
            f("partitions", .arr([
                f("partitionIndex", .i32), f("errorCode", .err), f("highWatermark", .i64),
                f("lastStableOffset", .i64, 4), f("logStartOffset", .i64, 5),
                f("abortedTransactions", .arr([f("producerId", .i64), f("firstOffset", .i64)]), 4),
                f("preferredReadReplica", .i32, 11), f("records", .records),
            ])),
        ])),
    ],
    2: [
        f("throttleTimeMs", .i32, 2),
        f("topics", .arr([
            f("name", .topic),
            f("partitions", .arr([
                f("partitionIndex", .i32), f("errorCode", .err), f("oldStyleOffsets", .i64s, 0, 0),
                f("timestamp", .i64, 1), f("offset", .i64, 1), f("leaderEpoch", .i32, 4),
            ])),
        ])),
    ],
    10: [
        f("throttleTimeMs", .i32, 1), f("errorCode", .err, 0, 3), f("errorMessage", .nstr, 1, 3),
        f("nodeId", .i32, 0, 3), f("host", .str, 0, 3), f("port", .i32, 0, 3),
        f("coordinators", .arr([
            f("key", .str), f("nodeId", .i32), f("host", .str), f("port", .i32), f("errorCode", .err),
            f("errorMessage", .nstr),
        ]), 4),
    ],
    11: [
        f("throttleTimeMs", .i32, 2), f("errorCode", .err), f("generationId", .i32), f("protocolType", .nstr, 7),
        f("protocolName", .nstr), f("leader", .str), f("skipAssignment", .bool, 9), f("memberId", .str),
        f("members", .arr([f("memberId", .str), f("groupInstanceId", .nstr, 5), f("metadata", .bytes)])),
    ],
    14: [
        f("throttleTimeMs", .i32, 1), f("errorCode", .err), f("protocolType", .nstr, 5),
        f("protocolName", .nstr, 5), f("assignment", .bytes),
    ],
    12: [f("throttleTimeMs", .i32, 1), f("errorCode", .err)],
    13: [
        f("throttleTimeMs", .i32, 1), f("errorCode", .err),
        f("members", .arr([f("memberId", .str), f("groupInstanceId", .nstr), f("errorCode", .err)]), 3),
    ],
    8: [
        f("throttleTimeMs", .i32, 3),
        f("topics", .arr([f("name", .topic), f("partitions", .arr([f("partitionIndex", .i32), f("errorCode", .err)]))])),
    ],
    9: [
        f("throttleTimeMs", .i32, 3),
        f("topics", .arr([
            f("name", .topic),
            f("partitions", .arr([
                f("partitionIndex", .i32), f("committedOffset", .i64), f("committedLeaderEpoch", .i32, 5),
                f("metadata", .nstr), f("errorCode", .err),
            ])),
        ]), 0, 7),
        f("errorCode", .err, 2, 7),
        f("groups", .arr([
            f("groupId", .str),
            f("topics", .arr([
                f("name", .topic),
                f("partitions", .arr([
                    f("partitionIndex", .i32), f("committedOffset", .i64), f("committedLeaderEpoch", .i32),
                    f("metadata", .nstr), f("errorCode", .err),
                ])),
            ])),
            f("errorCode", .err),
        ]), 8),
    ],
    19: [
        f("throttleTimeMs", .i32, 2),
        f("topics", .arr([
            f("name", .topic), f("topicId", .uuid, 7), f("errorCode", .err), f("errorMessage", .nstr, 1),
            f("numPartitions", .i32, 5), f("replicationFactor", .i16, 5),
            f("configs", .arr([
                f("name", .str), f("value", .nstr), f("readOnly", .bool), f("configSource", .i8),
                f("isSensitive", .bool),
            ]), 5),
        ])),
    ],
    20: [
        f("throttleTimeMs", .i32, 1),
        f("responses", .arr([
            f("name", .topic), f("topicId", .uuid, 6), f("errorCode", .err), f("errorMessage", .nstr, 5),
        ])),
    ],
]
