extension OpenAPIDocument {
    /// The same text as docs/openapi.json (a test keeps the two equal): served at /v1/openapi.json.
    public static let text = #"""
{
  "openapi": "3.1.0",
  "info": {
    "title": "Skald API",
    "version": "1",
    "description": "Start, follow and control saga runs on a `skald serve` process. Every /v1 route needs `Authorization: Bearer <token>` when the server has a token. Errors are `{\"error\": {\"code\", \"message\"}}`."
  },
  "servers": [
    {
      "url": "http://127.0.0.1:7400"
    }
  ],
  "components": {
    "securitySchemes": {
      "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "Required when the server runs with --token (or SKALD_TOKEN); a server without a token takes requests without one."
      }
    },
    "schemas": {
      "Error": {
        "type": "object",
        "required": [
          "error"
        ],
        "properties": {
          "error": {
            "type": "object",
            "required": [
              "code",
              "message"
            ],
            "properties": {
              "code": {
                "type": "string",
                "enum": [
                  "malformed_json",
                  "not_found",
                  "conflict",
                  "invalid",
                  "too_large",
                  "unauthorized",
                  "http_error",
                  "internal",
                  "unsupported_media_type",
                  "method_not_allowed",
                  "unavailable",
                  "unrunnable_definition",
                  "too_many_long_polls",
                  "idempotency_key_reused",
                  "bad_path",
                  "unknown_host",
                  "too_many_connections"
                ]
              },
              "message": {
                "type": "string"
              },
              "details": {
                "type": "object"
              }
            }
          }
        }
      },
      "Health": {
        "type": "object",
        "required": [
          "status",
          "database"
        ],
        "properties": {
          "status": {
            "type": "string",
            "enum": [
              "ok",
              "degraded",
              "unavailable"
            ],
            "description": "ok; degraded: storing runs' progress fails (runs wait and carry on once it works again); unavailable: the database cannot be read"
          },
          "database": {
            "type": "string",
            "enum": [
              "ok",
              "failing"
            ]
          },
          "message": {
            "type": "string",
            "description": "Why it is not ok, without the database's own error text (the server log has it)"
          },
          "warnings": {
            "type": "array",
            "items": {
              "type": "string"
            },
            "description": "What this node cannot do well although it is healthy: each saga whose runs it cannot run (its environment lacks variables the saga reads), which it leaves to nodes that can; and, on a database shared by several nodes, a clock more than a second off the database's."
          }
        }
      },
      "Failure": {
        "type": [
          "object",
          "null"
        ],
        "properties": {
          "step": {
            "type": [
              "string",
              "null"
            ]
          },
          "reason": {
            "type": "string"
          }
        }
      },
      "RunStatus": {
        "type": "string",
        "enum": [
          "running",
          "compensating",
          "completed",
          "compensated",
          "compensation_failed",
          "stuck",
          "abandoned"
        ]
      },
      "Links": {
        "type": "object",
        "properties": {
          "self": {
            "type": "string"
          },
          "events": {
            "type": "string"
          },
          "cancel": {
            "type": "string"
          },
          "retry": {
            "type": "string"
          },
          "resolve": {
            "type": "string"
          },
          "abandon": {
            "type": "string"
          }
        }
      },
      "RunSummary": {
        "type": "object",
        "required": [
          "id",
          "saga",
          "version",
          "status",
          "createdAt",
          "updatedAt",
          "links"
        ],
        "properties": {
          "id": {
            "type": "string"
          },
          "saga": {
            "type": "string"
          },
          "version": {
            "type": "integer"
          },
          "status": {
            "$ref": "#/components/schemas/RunStatus"
          },
          "createdAt": {
            "type": "string",
            "format": "date-time"
          },
          "updatedAt": {
            "type": "string",
            "format": "date-time"
          },
          "failure": {
            "$ref": "#/components/schemas/Failure"
          },
          "compensationFailure": {
            "$ref": "#/components/schemas/Failure"
          },
          "idempotencyKey": {
            "type": [
              "string",
              "null"
            ]
          },
          "links": {
            "$ref": "#/components/schemas/Links"
          },
          "stuck": {
            "$ref": "#/components/schemas/Failure"
          },
          "currentStep": {
            "type": [
              "string",
              "null"
            ],
            "description": "The first step being sent, undone or waiting to be retried (unfinished runs)"
          }
        }
      },
      "Attempt": {
        "type": "object",
        "properties": {
          "phase": {
            "type": "string",
            "enum": [
              "forward",
              "compensate"
            ]
          },
          "number": {
            "type": "integer"
          },
          "idempotencyKey": {
            "type": "string"
          },
          "startedAt": {
            "type": "string",
            "format": "date-time"
          },
          "sends": {
            "type": "integer",
            "description": "More than 1 when a restart found the attempt without an outcome and sent it again."
          },
          "node": {
            "type": [
              "string",
              "null"
            ],
            "description": "On PostgreSQL, the skald serve node that last sent the attempt; null on SQLite."
          },
          "finishedAt": {
            "type": [
              "string",
              "null"
            ],
            "format": "date-time"
          },
          "outcome": {
            "type": "string",
            "enum": [
              "succeeded",
              "failed",
              "in_flight"
            ]
          },
          "httpStatus": {
            "type": [
              "integer",
              "null"
            ]
          },
          "error": {
            "type": [
              "string",
              "null"
            ]
          },
          "durationMs": {
            "type": [
              "integer",
              "null"
            ]
          }
        }
      },
      "Step": {
        "type": "object",
        "properties": {
          "name": {
            "type": "string"
          },
          "status": {
            "type": "string",
            "enum": [
              "pending",
              "running",
              "succeeded",
              "failed",
              "outcome_unknown",
              "compensating",
              "compensated",
              "compensation_failed",
              "compensation_skipped",
              "resolved",
              "compensation_resolved"
            ],
            "description": "resolved: the step failed for good on a stuck run and an operator recorded that its work was done by hand (the run went on from it); compensation_resolved: its compensation failed for good and an operator recorded that it was undone by hand. `resolution` says who, when and what."
          },
          "outcomeUnknown": {
            "type": "boolean",
            "description": "A forward attempt got no answer (timeout, or the connection broke after sending) and none succeeded since: the participant may have applied the request. Such a step ends outcome_unknown and is compensated unless it declares compensateUnknown: false."
          },
          "resolution": {
            "type": [
              "object",
              "null"
            ],
            "description": "Set when an operator resolved the step (status resolved) or its compensation (compensation_resolved) by hand: who, when, and their note.",
            "required": [
              "by",
              "note",
              "at"
            ],
            "properties": {
              "by": {
                "type": "string"
              },
              "note": {
                "type": "string"
              },
              "at": {
                "type": "string",
                "format": "date-time"
              }
            }
          },
          "idempotencyKey": {
            "type": "string",
            "description": "The Idempotency-Key of the step's forward request (RUN:STEP:forward), to look it up at the participant."
          },
          "attempts": {
            "type": "integer"
          },
          "compensationAttempts": {
            "type": "integer"
          },
          "nextAttemptAt": {
            "type": [
              "string",
              "null"
            ],
            "format": "date-time"
          },
          "waiting": {
            "type": [
              "object",
              "null"
            ],
            "description": "Why the step is not being sent now, when a participant holds it back (known to the node driving the run; null otherwise): circuit_open (its next attempt is due at `until`, when the circuit lets a probe through; the wait uses up no attempt) or queued (in line for the participant's bulkhead, rate limit, a 429's Retry-After or the half-open probes).",
            "required": [
              "participant",
              "reason",
              "until"
            ],
            "properties": {
              "participant": {
                "type": "string"
              },
              "reason": {
                "type": "string",
                "enum": [
                  "circuit_open",
                  "queued"
                ]
              },
              "until": {
                "type": [
                  "string",
                  "null"
                ],
                "format": "date-time"
              }
            }
          },
          "response": {
            "type": [
              "object",
              "null"
            ],
            "properties": {
              "status": {
                "type": "integer"
              },
              "body": {}
            }
          },
          "lastError": {
            "type": [
              "string",
              "null"
            ]
          },
          "attemptLog": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Attempt"
            }
          }
        }
      },
      "Run": {
        "allOf": [
          {
            "$ref": "#/components/schemas/RunSummary"
          },
          {
            "type": "object",
            "properties": {
              "definitionHash": {
                "type": "string"
              },
              "input": {},
              "steps": {
                "type": "array",
                "items": {
                  "$ref": "#/components/schemas/Step"
                }
              },
              "created": {
                "type": "boolean",
                "description": "On POST /v1/runs: false when an earlier run with the same idempotencyKey was returned."
              },
              "deadlineAt": {
                "type": [
                  "string",
                  "null"
                ],
                "format": "date-time"
              },
              "traceId": {
                "type": [
                  "string",
                  "null"
                ],
                "description": "The W3C trace id of the run: every call to a participant carries it in traceparent"
              },
              "traceparent": {
                "type": [
                  "string",
                  "null"
                ],
                "description": "The run's traceparent: the caller's (POST /v1/runs with a traceparent header) or one Skald made"
              },
              "graph": {
                "$ref": "#/components/schemas/Graph"
              },
              "unrunnable": {
                "type": [
                  "object",
                  "null"
                ],
                "description": "Set when the engine cannot drive the run (its stored state breaks the engine's rules, or its definition no longer validates): nothing more is sent for it; settle it by hand and abandon it.",
                "properties": {
                  "message": {
                    "type": "string"
                  },
                  "problems": {
                    "type": "array",
                    "items": {
                      "type": "string"
                    }
                  },
                  "canBeAbandoned": {
                    "type": "boolean"
                  }
                },
                "required": [
                  "message",
                  "problems",
                  "canBeAbandoned"
                ]
              },
              "accepted": {
                "type": "string",
                "description": "On a 202 answer to an operator action: the node that drives the run took it and is still carrying it out."
              }
            }
          }
        ]
      },
      "Event": {
        "type": "object",
        "properties": {
          "sequence": {
            "type": "integer"
          },
          "at": {
            "type": "string",
            "format": "date-time"
          },
          "kind": {
            "type": "string"
          },
          "step": {
            "type": [
              "string",
              "null"
            ]
          },
          "phase": {
            "type": [
              "string",
              "null"
            ]
          },
          "attempt": {
            "type": [
              "integer",
              "null"
            ]
          },
          "message": {
            "type": "string"
          },
          "data": {
            "type": "object"
          }
        }
      },
      "Definition": {
        "type": "object",
        "properties": {
          "name": {
            "type": "string"
          },
          "version": {
            "type": "integer"
          },
          "hash": {
            "type": "string"
          },
          "registeredAt": {
            "type": "string",
            "format": "date-time"
          },
          "description": {
            "type": [
              "string",
              "null"
            ]
          },
          "steps": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "definition": {
            "type": "object",
            "description": "The saga as registered (GET /v1/definitions/{name} only)."
          },
          "warnings": {
            "type": "array",
            "description": "What the definition allows but probably does not mean, such as a compensation that needs the response of a step whose outcome may be unknown (POST /v1/definitions only; empty when there is nothing to say).",
            "items": {
              "type": "object",
              "properties": {
                "path": {
                  "type": [
                    "string",
                    "null"
                  ],
                  "description": "The JSON path, such as steps[2].compensation."
                },
                "line": {
                  "type": [
                    "integer",
                    "null"
                  ]
                },
                "column": {
                  "type": [
                    "integer",
                    "null"
                  ]
                },
                "message": {
                  "type": "string"
                }
              }
            }
          },
          "graph": {
            "$ref": "#/components/schemas/Graph"
          }
        }
      },
      "Graph": {
        "type": [
          "object",
          "null"
        ],
        "description": "The saga's steps wave by wave and their dependencies, for drawing it",
        "properties": {
          "waves": {
            "type": "array",
            "items": {
              "type": "array",
              "items": {
                "type": "string"
              }
            }
          },
          "steps": {
            "type": "array",
            "items": {
              "type": "object",
              "properties": {
                "name": {
                  "type": "string"
                },
                "dependsOn": {
                  "type": "array",
                  "items": {
                    "type": "string"
                  }
                },
                "pivot": {
                  "type": "boolean"
                },
                "compensation": {
                  "type": "boolean"
                }
              }
            }
          }
        }
      },
      "Participant": {
        "type": "object",
        "description": "A participant as this server protects it now. Kept in memory: after a restart every circuit starts closed; on a shared database each node has its own.",
        "required": [
          "name",
          "saga",
          "circuit",
          "failureRate",
          "slowCallRate",
          "callsInWindow",
          "inFlight",
          "queued",
          "nextProbeAt",
          "pausedUntil",
          "timesOpened",
          "sent",
          "failed",
          "heldBack",
          "settings",
          "summary"
        ],
        "properties": {
          "name": {
            "type": "string"
          },
          "saga": {
            "type": [
              "string",
              "null"
            ],
            "description": "The saga whose definition declares it; null for a participant of the server's --participants file, shared by every saga."
          },
          "circuit": {
            "type": [
              "string",
              "null"
            ],
            "enum": [
              "closed",
              "open",
              "half_open",
              null,
              null
            ],
            "description": "Null when it has no circuit breaker."
          },
          "failureRate": {
            "type": [
              "number",
              "null"
            ],
            "description": "Percent of the window's calls that failed (transport errors, timeouts, 5xx, 429); null with no calls in the window."
          },
          "slowCallRate": {
            "type": [
              "number",
              "null"
            ],
            "description": "Percent of the window's calls slower than slowCall."
          },
          "callsInWindow": {
            "type": "integer",
            "minimum": 0
          },
          "inFlight": {
            "type": "integer",
            "minimum": 0
          },
          "queued": {
            "type": "integer",
            "minimum": 0,
            "description": "Attempts waiting in line for the bulkhead, the rate limit, a Retry-After or the probes."
          },
          "nextProbeAt": {
            "type": [
              "string",
              "null"
            ],
            "format": "date-time",
            "description": "While open: when probes may go."
          },
          "pausedUntil": {
            "type": [
              "string",
              "null"
            ],
            "format": "date-time",
            "description": "A 429's Retry-After: nothing is sent to the participant before this."
          },
          "timesOpened": {
            "type": "integer",
            "minimum": 0
          },
          "sent": {
            "type": "integer",
            "minimum": 0,
            "description": "Attempts let through since the server started."
          },
          "failed": {
            "type": "integer",
            "minimum": 0
          },
          "heldBack": {
            "type": "integer",
            "minimum": 0,
            "description": "Times a step's attempt was held back because the circuit was open."
          },
          "settings": {
            "type": "object",
            "description": "As in the participants file: baseUrl, circuitBreaker, bulkhead, rateLimit.",
            "properties": {
              "baseUrl": {
                "type": "string",
                "description": "Server-wide participants (skald serve --participants): calls whose URL starts with this are the participant's"
              },
              "circuitBreaker": {
                "type": "object",
                "required": [
                  "failureRate",
                  "minimumCalls",
                  "openFor",
                  "maxOpenFor",
                  "backoffCoefficient",
                  "probes"
                ],
                "properties": {
                  "failureRate": {
                    "type": "number",
                    "description": "Percent of failed calls in the window that opens the circuit"
                  },
                  "minimumCalls": {
                    "type": "integer"
                  },
                  "openFor": {
                    "type": "string",
                    "description": "A duration, such as 30s or 5m"
                  },
                  "maxOpenFor": {
                    "type": "string",
                    "description": "A duration, such as 30s or 5m"
                  },
                  "backoffCoefficient": {
                    "type": "number"
                  },
                  "probes": {
                    "type": "integer",
                    "description": "Calls let through while half-open"
                  },
                  "windowCalls": {
                    "type": "integer",
                    "description": "The window is the last N calls (or windowTime)"
                  },
                  "windowTime": {
                    "type": "string",
                    "description": "The window is the calls of this last span of time (or windowCalls)"
                  },
                  "slowCall": {
                    "type": "string",
                    "description": "A call slower than this counts as slow"
                  },
                  "slowCallRate": {
                    "type": "number",
                    "description": "Percent of slow calls in the window that opens the circuit"
                  }
                }
              },
              "bulkhead": {
                "type": "object",
                "required": [
                  "maxInFlight"
                ],
                "properties": {
                  "maxInFlight": {
                    "type": "integer"
                  }
                }
              },
              "rateLimit": {
                "type": "object",
                "required": [
                  "perSecond",
                  "burst"
                ],
                "properties": {
                  "perSecond": {
                    "type": "number"
                  },
                  "burst": {
                    "type": "integer"
                  }
                }
              }
            }
          },
          "summary": {
            "type": "string"
          }
        }
      },
      "SagaDefinition": {
        "title": "Skald saga definition",
        "description": "A saga: HTTP steps run in order, each with an optional compensation that undoes it. `skald validate` checks everything this schema checks, and also references between steps, the input schema and duration bounds.",
        "type": "object",
        "additionalProperties": false,
        "required": [
          "name",
          "version",
          "steps"
        ],
        "properties": {
          "$schema": {
            "type": "string",
            "description": "Path or URL of this schema, for editors."
          },
          "name": {
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
            "description": "The saga's name, used to start runs."
          },
          "version": {
            "type": "integer",
            "minimum": 1,
            "description": "Bump it whenever the saga changes. Runs record the exact definition (by content hash) they run."
          },
          "description": {
            "type": "string"
          },
          "defaults": {
            "type": "object",
            "additionalProperties": false,
            "description": "Defaults for every call of the saga.",
            "properties": {
              "timeout": {
                "$ref": "#/components/schemas/SagaDefinition.duration",
                "description": "Deadline of each attempt (default 10s)."
              },
              "retry": {
                "$ref": "#/components/schemas/SagaDefinition.retry",
                "description": "Retry policy of forward requests (default: 3 attempts, 200ms, x2, max 10s, full jitter)."
              },
              "compensationRetry": {
                "$ref": "#/components/schemas/SagaDefinition.retry",
                "description": "Retry policy of compensations (default: 10 attempts, 200ms, x2, max 30s, full jitter)."
              }
            }
          },
          "inputSchema": {
            "type": "object",
            "description": "A JSON Schema (subset: type, properties, required, items, enum, additionalProperties, minimum, maximum, minLength, maxLength, pattern, writeOnly) the run input must match. {{input.…}} references are checked against it. \"writeOnly\": true marks a sensitive field (a card number, a token), shown as *** everywhere but in the calls that use it."
          },
          "participants": {
            "type": "object",
            "description": "The services the steps call, by name; a step names its own with \"participant\". A participant of the same name in the server's --participants file replaces these settings and is shared by every saga.",
            "propertyNames": {
              "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
            },
            "additionalProperties": {
              "$ref": "#/components/schemas/SagaDefinition.participant"
            }
          },
          "steps": {
            "type": "array",
            "minItems": 1,
            "items": {
              "$ref": "#/components/schemas/SagaDefinition.step"
            }
          },
          "deadline": {
            "$ref": "#/components/schemas/SagaDefinition.duration",
            "description": "How long a run may go forward; when it passes, no new forward attempt starts and the run compensates."
          }
        }
      },
      "SagaDefinition.duration": {
        "type": "string",
        "pattern": "^([0-9]+(\\.[0-9]+)?(ms|s|m|h|d))+$",
        "description": "A duration such as 250ms, 5s, 2m, 1h or 1m30s."
      },
      "SagaDefinition.template": {
        "type": "string",
        "description": "Text that may hold {{input.PATH}}, {{steps.NAME.response.status}}, {{steps.NAME.response.body.PATH}}, {{steps.NAME.idempotencyKey}}, {{run.id}} or {{env.NAME}}."
      },
      "SagaDefinition.retry": {
        "type": "object",
        "additionalProperties": false,
        "properties": {
          "maxAttempts": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
            "description": "All attempts, the first included."
          },
          "initialInterval": {
            "$ref": "#/components/schemas/SagaDefinition.duration"
          },
          "backoffCoefficient": {
            "type": "number",
            "minimum": 1,
            "maximum": 10
          },
          "maxInterval": {
            "$ref": "#/components/schemas/SagaDefinition.duration"
          },
          "jitter": {
            "enum": [
              "none",
              "full"
            ]
          }
        }
      },
      "SagaDefinition.call": {
        "type": "object",
        "additionalProperties": false,
        "required": [
          "method",
          "url"
        ],
        "properties": {
          "method": {
            "enum": [
              "GET",
              "POST",
              "PUT",
              "PATCH",
              "DELETE",
              "HEAD",
              "OPTIONS"
            ]
          },
          "url": {
            "$ref": "#/components/schemas/SagaDefinition.template",
            "description": "http(s) URL; values from input and steps are percent-encoded, env values are inserted as they are."
          },
          "headers": {
            "type": "object",
            "propertyNames": {
              "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
            },
            "additionalProperties": {
              "$ref": "#/components/schemas/SagaDefinition.template"
            }
          },
          "secretHeaders": {
            "description": "Headers of this call whose values are never shown (Authorization, Proxy-Authorization and Cookie always are).",
            "type": "array",
            "items": {
              "type": "string"
            },
            "uniqueItems": true
          },
          "body": {
            "description": "Any JSON. A string that is one whole {{…}} keeps the referenced value's type."
          },
          "timeout": {
            "$ref": "#/components/schemas/SagaDefinition.duration"
          },
          "retry": {
            "$ref": "#/components/schemas/SagaDefinition.retry"
          },
          "successStatus": {
            "type": "array",
            "minItems": 1,
            "items": {
              "oneOf": [
                {
                  "type": "integer",
                  "minimum": 100,
                  "maximum": 599
                },
                {
                  "type": "string",
                  "pattern": "^[1-5]xx$"
                }
              ]
            },
            "description": "Statuses that count as success (replaces any 2xx)."
          },
          "retryOn": {
            "type": "array",
            "minItems": 1,
            "items": {
              "oneOf": [
                {
                  "type": "integer",
                  "minimum": 100,
                  "maximum": 599
                },
                {
                  "type": "string",
                  "pattern": "^[1-5]xx$"
                }
              ]
            },
            "description": "Statuses to retry."
          },
          "failOn": {
            "type": "array",
            "minItems": 1,
            "items": {
              "oneOf": [
                {
                  "type": "integer",
                  "minimum": 100,
                  "maximum": 599
                },
                {
                  "type": "string",
                  "pattern": "^[1-5]xx$"
                }
              ]
            },
            "description": "Statuses that fail at once."
          },
          "maxElapsed": {
            "$ref": "#/components/schemas/SagaDefinition.duration",
            "description": "No retry starts later than this after the first attempt."
          }
        }
      },
      "SagaDefinition.step": {
        "type": "object",
        "additionalProperties": false,
        "required": [
          "name",
          "request"
        ],
        "properties": {
          "name": {
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$"
          },
          "dependsOn": {
            "type": "array",
            "items": {
              "type": "string"
            },
            "uniqueItems": true,
            "description": "Steps that must succeed first; [] starts at once. Without it, the step waits for the one before it."
          },
          "pivot": {
            "type": "boolean",
            "description": "The point of no return: once it succeeds, the saga only goes forward."
          },
          "participant": {
            "type": "string",
            "description": "One of the saga's participants: the step's calls, forward and compensation, go through its circuit breaker, bulkhead and rate limit."
          },
          "compensateUnknown": {
            "type": "boolean",
            "default": true,
            "description": "When the step fails with its outcome unknown (an attempt timed out, or the connection broke after the request was sent), compensate it in case it was applied (true, the default) or leave it as it is (false). On the pivot: true stops the run for a person, false counts the unknown outcome as a refusal."
          },
          "request": {
            "$ref": "#/components/schemas/SagaDefinition.call"
          },
          "compensation": {
            "$ref": "#/components/schemas/SagaDefinition.call",
            "description": "The call that undoes this step; run in reverse order when a later step fails for good."
          }
        }
      },
      "SagaDefinition.circuitBreaker": {
        "type": "object",
        "additionalProperties": false,
        "description": "Opens when too many of the participant's recent calls failed (transport errors, timeouts, 5xx, 429; a refusal the step declares does not count) or were slow; while open, steps wait without using up attempts; after openFor, probes go, and their success closes it. {} gives the defaults.",
        "properties": {
          "failureRate": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 100,
            "default": 50,
            "description": "Percent of failed calls in the window that opens the circuit."
          },
          "minimumCalls": {
            "type": "integer",
            "minimum": 1,
            "maximum": 10000,
            "default": 10,
            "description": "No decision on fewer calls than this in the window."
          },
          "windowCalls": {
            "type": "integer",
            "minimum": 1,
            "maximum": 10000,
            "default": 20,
            "description": "The window is the last N calls (the default)."
          },
          "windowTime": {
            "$ref": "#/components/schemas/SagaDefinition.duration",
            "description": "The window is the calls of the last span of time, instead of windowCalls."
          },
          "slowCall": {
            "$ref": "#/components/schemas/SagaDefinition.duration",
            "description": "A call at least this long is slow."
          },
          "slowCallRate": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 100,
            "default": 100,
            "description": "Percent of slow calls in the window that opens the circuit (needs slowCall)."
          },
          "openFor": {
            "$ref": "#/components/schemas/SagaDefinition.duration",
            "description": "How long it stays open before probes go (default 10s)."
          },
          "maxOpenFor": {
            "$ref": "#/components/schemas/SagaDefinition.duration",
            "description": "The longest open time, as failed probes multiply it by backoffCoefficient (default 5m)."
          },
          "backoffCoefficient": {
            "type": "number",
            "minimum": 1,
            "maximum": 10,
            "default": 2
          },
          "probes": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1000,
            "default": 1,
            "description": "Calls let through when half-open; it closes when all succeed, and opens again when one fails."
          }
        },
        "not": {
          "required": [
            "windowCalls",
            "windowTime"
          ]
        }
      },
      "SagaDefinition.participant": {
        "type": "object",
        "additionalProperties": false,
        "description": "A service the saga's steps call, and how Skald protects it across all runs. Every part is optional; {} only names it (a server's --participants file may set it).",
        "properties": {
          "circuitBreaker": {
            "$ref": "#/components/schemas/SagaDefinition.circuitBreaker"
          },
          "bulkhead": {
            "type": "object",
            "additionalProperties": false,
            "required": [
              "maxInFlight"
            ],
            "properties": {
              "maxInFlight": {
                "type": "integer",
                "minimum": 1,
                "maximum": 10000,
                "description": "The most attempts in flight to the participant at once; further ones wait in line, first come first served."
              }
            }
          },
          "rateLimit": {
            "type": "object",
            "additionalProperties": false,
            "required": [
              "perSecond"
            ],
            "properties": {
              "perSecond": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": 1000000,
                "description": "Calls a second, across all runs."
              },
              "burst": {
                "type": "integer",
                "minimum": 1,
                "maximum": 100000,
                "default": 1,
                "description": "Calls that may go at once after a quiet spell."
              }
            }
          }
        }
      }
    },
    "responses": {
      "Malformed": {
        "description": "Malformed JSON",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "NotFound": {
        "description": "Unknown run or saga",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "Conflict": {
        "description": "The run's state does not allow it",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "TooLarge": {
        "description": "Body over the limit",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "Invalid": {
        "description": "Invalid request",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "Unauthorized": {
        "description": "Missing or wrong bearer token",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "UnsupportedMediaType": {
        "description": "The POST did not send Content-Type: application/json (required even without a body, so that a cross-origin form cannot act)",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      }
    }
  },
  "security": [
    {
      "bearer": []
    },
    {}
  ],
  "paths": {
    "/": {
      "get": {
        "operationId": "console",
        "summary": "The web console: one HTML page that reads this API (no token needed for the page; its API calls send the token)",
        "security": [],
        "responses": {
          "200": {
            "description": "The console page",
            "content": {
              "text/html": {
                "schema": {
                  "type": "string"
                }
              }
            }
          }
        }
      }
    },
    "/health": {
      "get": {
        "operationId": "health",
        "summary": "Process up, database readable and storing runs' progress (no token needed)",
        "security": [],
        "responses": {
          "200": {
            "description": "Healthy",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Health"
                }
              }
            }
          },
          "503": {
            "description": "Degraded (storing runs' progress has been failing since a given time) or unavailable (the database cannot be read); the database's own error is only in the server log",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Health"
                }
              }
            }
          },
          "422": {
            "$ref": "#/components/responses/Invalid"
          }
        }
      }
    },
    "/metrics": {
      "get": {
        "operationId": "metrics",
        "summary": "The server's metrics in Prometheus's text format (runs, attempts, store commits, process)",
        "description": "Needs the bearer token when the server has one, unless it runs with --metrics-public. Counters end in _total, durations are histograms in seconds; no label holds a run id. See the README's Metrics section for every series.",
        "responses": {
          "200": {
            "description": "The metrics",
            "content": {
              "text/plain": {
                "schema": {
                  "type": "string"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          }
        }
      }
    },
    "/v1/openapi.json": {
      "get": {
        "operationId": "getOpenAPI",
        "summary": "This document",
        "responses": {
          "200": {
            "description": "OpenAPI 3 document"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "422": {
            "$ref": "#/components/responses/Invalid"
          }
        }
      }
    },
    "/v1/definitions": {
      "get": {
        "operationId": "listDefinitions",
        "summary": "Registered sagas, one entry per name and version",
        "responses": {
          "200": {
            "description": "Definitions",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object",
                  "properties": {
                    "definitions": {
                      "type": "array",
                      "items": {
                        "$ref": "#/components/schemas/Definition"
                      }
                    }
                  }
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "422": {
            "$ref": "#/components/responses/Invalid"
          }
        }
      },
      "post": {
        "operationId": "registerDefinition",
        "summary": "Register a saga definition (the body is the definition itself)",
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/SagaDefinition"
              },
              "example": {
                "name": "ping",
                "version": 1,
                "steps": [
                  {
                    "name": "ping",
                    "request": {
                      "method": "POST",
                      "url": "http://127.0.0.1:9/ping"
                    }
                  }
                ]
              }
            }
          }
        },
        "responses": {
          "201": {
            "description": "Registered",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Definition"
                }
              }
            },
            "links": {
              "GetDefinition": {
                "operationId": "getDefinition",
                "parameters": {
                  "name": "$response.body#/name"
                }
              },
              "StartRun": {
                "operationId": "startRun",
                "requestBody": {
                  "saga": "$response.body#/name"
                }
              }
            }
          },
          "200": {
            "description": "Already registered with the same content",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Definition"
                }
              }
            },
            "links": {
              "GetDefinition": {
                "operationId": "getDefinition",
                "parameters": {
                  "name": "$response.body#/name"
                }
              },
              "StartRun": {
                "operationId": "startRun",
                "requestBody": {
                  "saga": "$response.body#/name"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/Malformed"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "413": {
            "$ref": "#/components/responses/TooLarge"
          },
          "422": {
            "$ref": "#/components/responses/Invalid"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "503": {
            "description": "The database cannot be written right now (a full disk, a read-only file, another process holding the write lock); nothing was changed",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        }
      }
    },
    "/v1/definitions/{name}": {
      "get": {
        "operationId": "getDefinition",
        "summary": "A registered saga: the latest version, or ?version=",
        "parameters": [
          {
            "name": "name",
            "in": "path",
            "required": true,
            "schema": {
              "type": "string",
              "minLength": 1,
              "pattern": "^(?!\\.\\.?$)"
            }
          },
          {
            "name": "version",
            "in": "query",
            "required": false,
            "schema": {
              "type": "integer",
              "minimum": 1,
              "maximum": 2147483647
            }
          }
        ],
        "responses": {
          "200": {
            "description": "The definition",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Definition"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "422": {
            "$ref": "#/components/responses/Invalid"
          }
        }
      }
    },
    "/v1/runs": {
      "post": {
        "operationId": "startRun",
        "summary": "Start a run of a registered saga",
        "parameters": [
          {
            "name": "traceparent",
            "in": "header",
            "required": false,
            "description": "A W3C traceparent: the run continues this trace (a malformed one is ignored and the run starts its own)",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "tracestate",
            "in": "header",
            "required": false,
            "description": "A W3C tracestate, passed on to participants with a valid traceparent",
            "schema": {
              "type": "string"
            }
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "type": "object",
                "additionalProperties": false,
                "required": [
                  "saga"
                ],
                "properties": {
                  "saga": {
                    "type": "string",
                    "minLength": 1,
                    "description": "The name of a registered saga"
                  },
                  "version": {
                    "type": [
                      "integer",
                      "null"
                    ],
                    "minimum": 1,
                    "maximum": 2147483647
                  },
                  "input": {
                    "description": "The run's input; it must fit the saga's inputSchema (checked by the server: 422 with every problem otherwise)"
                  },
                  "idempotencyKey": {
                    "type": [
                      "string",
                      "null"
                    ],
                    "maxLength": 255,
                    "description": "Starting again with the same key returns the first run (200) instead of a second one.",
                    "minLength": 1
                  }
                }
              },
              "example": {
                "saga": "checkout",
                "input": {
                  "orderId": "order-1001",
                  "sku": "BLUE-MUG",
                  "quantity": 2,
                  "amount": 24.5,
                  "currency": "EUR",
                  "card": "4242424242424242",
                  "address": {
                    "name": "Ada Lovelace",
                    "street": "12 St James's Square",
                    "city": "London",
                    "country": "GB"
                  }
                },
                "idempotencyKey": "order-1001"
              }
            }
          }
        },
        "responses": {
          "201": {
            "description": "Started",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Run"
                }
              }
            },
            "links": {
              "GetRun": {
                "operationId": "getRun",
                "parameters": {
                  "id": "$response.body#/id"
                }
              },
              "GetRunEvents": {
                "operationId": "getRunEvents",
                "parameters": {
                  "id": "$response.body#/id"
                }
              },
              "CancelRun": {
                "operationId": "cancelRun",
                "parameters": {
                  "id": "$response.body#/id"
                }
              },
              "RetryRun": {
                "operationId": "retryRun",
                "parameters": {
                  "id": "$response.body#/id"
                }
              },
              "ResolveRun": {
                "operationId": "resolveRun",
                "parameters": {
                  "id": "$response.body#/id"
                }
              },
              "AbandonRun": {
                "operationId": "abandonRun",
                "parameters": {
                  "id": "$response.body#/id"
                }
              }
            }
          },
          "200": {
            "description": "A run with this idempotencyKey already exists",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Run"
                }
              }
            },
            "links": {
              "GetRun": {
                "operationId": "getRun",
                "parameters": {
                  "id": "$response.body#/id"
                }
              },
              "GetRunEvents": {
                "operationId": "getRunEvents",
                "parameters": {
                  "id": "$response.body#/id"
                }
              },
              "CancelRun": {
                "operationId": "cancelRun",
                "parameters": {
                  "id": "$response.body#/id"
                }
              },
              "RetryRun": {
                "operationId": "retryRun",
                "parameters": {
                  "id": "$response.body#/id"
                }
              },
              "ResolveRun": {
                "operationId": "resolveRun",
                "parameters": {
                  "id": "$response.body#/id"
                }
              },
              "AbandonRun": {
                "operationId": "abandonRun",
                "parameters": {
                  "id": "$response.body#/id"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/Malformed"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "413": {
            "$ref": "#/components/responses/TooLarge"
          },
          "422": {
            "$ref": "#/components/responses/Invalid"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "503": {
            "description": "The database cannot be written right now (a full disk, a read-only file, another process holding the write lock); nothing was changed",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "409": {
            "description": "The idempotencyKey belongs to a run of another saga, version or input (code idempotency_key_reused): send the same request to get that run, or use a new key",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        }
      },
      "get": {
        "operationId": "listRuns",
        "summary": "Runs, newest first",
        "parameters": [
          {
            "name": "status",
            "in": "query",
            "schema": {
              "$ref": "#/components/schemas/RunStatus"
            }
          },
          {
            "name": "saga",
            "in": "query",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "limit",
            "in": "query",
            "schema": {
              "type": "integer",
              "minimum": 1,
              "maximum": 500,
              "default": 50
            }
          },
          {
            "name": "cursor",
            "in": "query",
            "schema": {
              "type": "string"
            },
            "description": "nextCursor of the previous page"
          },
          {
            "name": "since",
            "in": "query",
            "schema": {
              "type": "string",
              "pattern": "^(([0-9]+(\\.[0-9]+)?(ms|s|m|h|d))+)$",
              "maxLength": 64,
              "example": "2h"
            },
            "description": "Only runs started within this long ago"
          },
          {
            "name": "until",
            "in": "query",
            "schema": {
              "type": "string",
              "pattern": "^(([0-9]+(\\.[0-9]+)?(ms|s|m|h|d))+)$",
              "maxLength": 64,
              "example": "30m"
            },
            "description": "Only runs started longer ago than this"
          },
          {
            "name": "idempotencyKey",
            "in": "query",
            "schema": {
              "type": "string",
              "minLength": 1,
              "maxLength": 255
            },
            "description": "Only the run started with this idempotency key"
          }
        ],
        "responses": {
          "200": {
            "description": "A page of runs",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object",
                  "properties": {
                    "runs": {
                      "type": "array",
                      "items": {
                        "$ref": "#/components/schemas/RunSummary"
                      }
                    },
                    "nextCursor": {
                      "type": [
                        "string",
                        "null"
                      ]
                    }
                  }
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "422": {
            "$ref": "#/components/responses/Invalid"
          }
        }
      }
    },
    "/v1/runs/{id}": {
      "get": {
        "operationId": "getRun",
        "summary": "A run: state, steps with attempts, responses, errors, timings",
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
              "type": "string",
              "minLength": 1,
              "pattern": "^(?!\\.\\.?$)"
            }
          }
        ],
        "responses": {
          "200": {
            "description": "The run",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Run"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "422": {
            "$ref": "#/components/responses/Invalid"
          }
        }
      }
    },
    "/v1/runs/{id}/events": {
      "get": {
        "operationId": "getRunEvents",
        "summary": "The run's history, oldest first; with wait, a long poll for what comes after `after`",
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
              "type": "string",
              "minLength": 1,
              "pattern": "^(?!\\.\\.?$)"
            }
          },
          {
            "name": "after",
            "in": "query",
            "schema": {
              "type": "integer",
              "format": "int64",
              "minimum": 0,
              "maximum": 9223372036854775807,
              "default": 0
            },
            "description": "Only events with a larger sequence"
          },
          {
            "name": "wait",
            "in": "query",
            "schema": {
              "type": "string",
              "pattern": "^(([0-9]+(\\.[0-9]+)?(ms|s|m|h|d))+|[0-9]+)$",
              "example": "30s",
              "maxLength": 64
            },
            "description": "When nothing is new, wait up to this long: a duration (30s, 500ms) or whole seconds; longer than 30s waits 30s"
          }
        ],
        "responses": {
          "200": {
            "description": "Events",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object",
                  "properties": {
                    "runId": {
                      "type": "string"
                    },
                    "status": {
                      "$ref": "#/components/schemas/RunStatus"
                    },
                    "events": {
                      "type": "array",
                      "items": {
                        "$ref": "#/components/schemas/Event"
                      }
                    },
                    "lastSequence": {
                      "type": "integer"
                    }
                  }
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "422": {
            "$ref": "#/components/responses/Invalid"
          },
          "429": {
            "description": "As many long polls are waiting as the server allows (--max-long-polls): try again after Retry-After seconds",
            "headers": {
              "Retry-After": {
                "schema": {
                  "type": "integer"
                }
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        }
      }
    },
    "/v1/runs/{id}/cancel": {
      "post": {
        "operationId": "cancelRun",
        "summary": "Stop forward progress and compensate the completed steps",
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
              "type": "string",
              "minLength": 1,
              "pattern": "^(?!\\.\\.?$)"
            }
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                  "reason": {
                    "type": [
                      "string",
                      "null"
                    ]
                  },
                  "by": {
                    "type": [
                      "string",
                      "null"
                    ],
                    "description": "Who, for the history"
                  }
                }
              }
            }
          },
          "description": "A JSON object, {} when there is no reason to record: a POST without a JSON body is refused (415) so that a cross-origin page cannot send one."
        },
        "responses": {
          "200": {
            "description": "Cancelled: the run is compensating (or already compensated)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Run"
                }
              }
            }
          },
          "202": {
            "description": "On a database shared by several nodes: the node that drives the run took the action and is still carrying it out; the run as it is now, with \"accepted\" saying so. Its history shows when the action is done.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Run"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/Malformed"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "422": {
            "$ref": "#/components/responses/Invalid"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "503": {
            "description": "The database cannot store the run's progress right now (see GET /health)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        }
      }
    },
    "/v1/runs/{id}/retry": {
      "post": {
        "operationId": "retryRun",
        "summary": "Try again: the failed compensation of a run in compensation_failed (all, or `step`), or the failed step of a stuck run",
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
              "type": "string",
              "minLength": 1,
              "pattern": "^(?!\\.\\.?$)"
            }
          }
        ],
        "responses": {
          "200": {
            "description": "The run is compensating again",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Run"
                }
              }
            }
          },
          "202": {
            "description": "On a database shared by several nodes: the node that drives the run took the action and is still carrying it out; the run as it is now, with \"accepted\" saying so. Its history shows when the action is done.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Run"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "422": {
            "$ref": "#/components/responses/Invalid"
          },
          "400": {
            "$ref": "#/components/responses/Malformed"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "503": {
            "description": "The database cannot store the run's progress right now (see GET /health)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                  "step": {
                    "type": [
                      "string",
                      "null"
                    ],
                    "minLength": 1,
                    "description": "The step whose failed compensation to retry; every failed one when left out"
                  },
                  "by": {
                    "type": [
                      "string",
                      "null"
                    ],
                    "description": "Who, for the history"
                  },
                  "note": {
                    "type": [
                      "string",
                      "null"
                    ],
                    "description": "Why, for the history"
                  }
                }
              }
            }
          }
        }
      }
    },
    "/v1/runs/{id}/resolve": {
      "post": {
        "operationId": "resolveRun",
        "summary": "Record that a step was done by hand: a failed compensation (undoing continues with the steps before it), or a stuck run's failed step (the run goes on with the steps after it)",
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
              "type": "string",
              "minLength": 1,
              "pattern": "^(?!\\.\\.?$)"
            }
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "type": "object",
                "additionalProperties": false,
                "required": [
                  "step",
                  "note"
                ],
                "properties": {
                  "step": {
                    "type": "string",
                    "minLength": 1,
                    "description": "The step whose compensation (compensation_failed run) or forward work (stuck run) was done by hand"
                  },
                  "note": {
                    "type": "string",
                    "minLength": 1,
                    "description": "What was done by hand"
                  },
                  "by": {
                    "type": [
                      "string",
                      "null"
                    ]
                  },
                  "response": {
                    "description": "Stuck runs only: the response body later steps read of this step, as the participant would have answered it; null or absent for none."
                  }
                }
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "Resolved; the run is compensating again (or compensated), or, on a stuck run, running again (or completed, or still stuck on another failed step)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Run"
                }
              }
            }
          },
          "202": {
            "description": "On a database shared by several nodes: the node that drives the run took the action and is still carrying it out; the run as it is now, with \"accepted\" saying so. Its history shows when the action is done.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Run"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/Malformed"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "422": {
            "$ref": "#/components/responses/Invalid"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "503": {
            "description": "The database cannot store the run's progress right now (see GET /health)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "description": "On a run in compensation_failed, `step` names a step whose compensation failed; it becomes compensation_resolved. On a stuck run, `step` names a step that failed for good after the pivot (or the pivot whose outcome is unknown); it becomes resolved and counts as succeeded. When later steps read that step's response without a `??` default, `response` must give the body they read (its status reads as 200); otherwise the answer is 409 naming them."
      }
    },
    "/v1/runs/{id}/abandon": {
      "post": {
        "operationId": "abandonRun",
        "summary": "Stop a run without undoing anything more, because the business settled it by hand (cancel, by contrast, compensates); the note is kept in the history",
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
              "type": "string",
              "minLength": 1,
              "pattern": "^(?!\\.\\.?$)"
            }
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "type": "object",
                "additionalProperties": false,
                "required": [
                  "note"
                ],
                "properties": {
                  "note": {
                    "type": "string",
                    "minLength": 1,
                    "description": "How the business settled it, for the history"
                  },
                  "by": {
                    "type": [
                      "string",
                      "null"
                    ],
                    "description": "Who, for the history"
                  }
                }
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "Abandoned: the run is abandoned (an attempt in flight finishes and is recorded)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Run"
                }
              }
            }
          },
          "202": {
            "description": "On a database shared by several nodes: the node that drives the run took the action and is still carrying it out; the run as it is now, with \"accepted\" saying so. Its history shows when the action is done.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Run"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/Malformed"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "422": {
            "$ref": "#/components/responses/Invalid"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "503": {
            "description": "The database cannot store the run's progress right now (see GET /health)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        }
      }
    },
    "/v1/counts": {
      "get": {
        "operationId": "countRuns",
        "summary": "How many runs are in each status",
        "responses": {
          "200": {
            "description": "Every status with its count (zero included), and the total",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object",
                  "required": [
                    "counts",
                    "total"
                  ],
                  "properties": {
                    "counts": {
                      "type": "object",
                      "additionalProperties": {
                        "type": "integer",
                        "minimum": 0
                      }
                    },
                    "total": {
                      "type": "integer",
                      "minimum": 0
                    }
                  }
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          }
        }
      }
    },
    "/v1/participants": {
      "get": {
        "operationId": "listParticipants",
        "summary": "Each participant's circuit breaker, bulkhead and rate limit, as this server sees them now",
        "responses": {
          "200": {
            "description": "The participants this server has met: those of its --participants file, and those of the sagas it has run",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object",
                  "required": [
                    "participants"
                  ],
                  "properties": {
                    "participants": {
                      "type": "array",
                      "items": {
                        "$ref": "#/components/schemas/Participant"
                      }
                    }
                  }
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          }
        }
      }
    }
  }
}
"""#
}
