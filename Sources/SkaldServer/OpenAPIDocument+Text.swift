extension OpenAPIDocument {
    /// The same text as docs/openapi.json (a test keeps the two equal): served at /v1/openapi.json.
    public static let text = #"""
{
  "openapi": "3.0.3",
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
      "Failure": {
        "type": "object",
        "nullable": true,
        "properties": {
          "step": {
            "type": "string",
            "nullable": true
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
            "type": "string",
            "nullable": true
          },
          "links": {
            "$ref": "#/components/schemas/Links"
          },
          "stuck": {
            "$ref": "#/components/schemas/Failure"
          },
          "currentStep": {
            "type": "string",
            "nullable": true,
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
            "type": "string",
            "nullable": true,
            "description": "On PostgreSQL, the skald serve node that last sent the attempt; null on SQLite."
          },
          "finishedAt": {
            "type": "string",
            "format": "date-time",
            "nullable": true
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
            "type": "integer",
            "nullable": true
          },
          "error": {
            "type": "string",
            "nullable": true
          },
          "durationMs": {
            "type": "integer",
            "nullable": true
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
            "type": "object",
            "nullable": true,
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
            "type": "string",
            "format": "date-time",
            "nullable": true
          },
          "waiting": {
            "type": "object",
            "nullable": true,
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
                "type": "string",
                "format": "date-time",
                "nullable": true
              }
            }
          },
          "response": {
            "type": "object",
            "nullable": true,
            "properties": {
              "status": {
                "type": "integer"
              },
              "body": {}
            }
          },
          "lastError": {
            "type": "string",
            "nullable": true
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
                "type": "string",
                "format": "date-time",
                "nullable": true
              },
              "traceId": {
                "type": "string",
                "nullable": true,
                "description": "The W3C trace id of the run: every call to a participant carries it in traceparent"
              },
              "traceparent": {
                "type": "string",
                "nullable": true,
                "description": "The run's traceparent: the caller's (POST /v1/runs with a traceparent header) or one Skald made"
              },
              "graph": {
                "$ref": "#/components/schemas/Graph"
              },
              "unrunnable": {
                "type": "object",
                "nullable": true,
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
            "type": "string",
            "nullable": true
          },
          "phase": {
            "type": "string",
            "nullable": true
          },
          "attempt": {
            "type": "integer",
            "nullable": true
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
            "type": "string",
            "nullable": true
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
                  "type": "string",
                  "nullable": true,
                  "description": "The JSON path, such as steps[2].compensation."
                },
                "line": {
                  "type": "integer",
                  "nullable": true
                },
                "column": {
                  "type": "integer",
                  "nullable": true
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
        "type": "object",
        "nullable": true,
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
            "type": "string",
            "nullable": true,
            "description": "The saga whose definition declares it; null for a participant of the server's --participants file, shared by every saga."
          },
          "circuit": {
            "type": "string",
            "nullable": true,
            "enum": [
              "closed",
              "open",
              "half_open",
              null
            ],
            "description": "Null when it has no circuit breaker."
          },
          "failureRate": {
            "type": "number",
            "nullable": true,
            "description": "Percent of the window's calls that failed (transport errors, timeouts, 5xx, 429); null with no calls in the window."
          },
          "slowCallRate": {
            "type": "number",
            "nullable": true,
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
            "type": "string",
            "format": "date-time",
            "nullable": true,
            "description": "While open: when probes may go."
          },
          "pausedUntil": {
            "type": "string",
            "format": "date-time",
            "nullable": true,
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
            "description": "As in the participants file: baseUrl, circuitBreaker, bulkhead, rateLimit."
          },
          "summary": {
            "type": "string"
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
                  "type": "object",
                  "properties": {
                    "status": {
                      "type": "string"
                    },
                    "database": {
                      "type": "string"
                    },
                    "warnings": {
                      "type": "array",
                      "items": {
                        "type": "string"
                      },
                      "description": "What this node cannot do well although it is healthy: each saga whose runs it cannot run (its environment lacks variables the saga reads), which it leaves to nodes that can; and, on a database shared by several nodes, a clock more than a second off the database's."
                    }
                  }
                }
              }
            }
          },
          "503": {
            "description": "Degraded (storing runs' progress has been failing since a given time) or unavailable (the database cannot be read); the database's own error is only in the server log",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object",
                  "properties": {
                    "status": {
                      "type": "string",
                      "enum": [
                        "degraded",
                        "unavailable"
                      ]
                    },
                    "database": {
                      "type": "string"
                    },
                    "message": {
                      "type": "string"
                    }
                  }
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
                "type": "object",
                "additionalProperties": false,
                "required": [
                  "name",
                  "version",
                  "steps"
                ],
                "properties": {
                  "$schema": {
                    "type": "string"
                  },
                  "name": {
                    "type": "string",
                    "pattern": "^[A-Za-z0-9._-]{1,100}$"
                  },
                  "version": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 2147483647
                  },
                  "description": {
                    "type": "string"
                  },
                  "defaults": {
                    "type": "object"
                  },
                  "inputSchema": {
                    "type": "object"
                  },
                  "deadline": {
                    "type": "string"
                  },
                  "steps": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 256,
                    "items": {
                      "type": "object",
                      "required": [
                        "name",
                        "request"
                      ],
                      "properties": {
                        "name": {
                          "type": "string",
                          "pattern": "^[A-Za-z0-9_-]+$"
                        },
                        "request": {
                          "type": "object"
                        },
                        "compensation": {
                          "type": "object"
                        },
                        "dependsOn": {
                          "type": "array",
                          "items": {
                            "type": "string"
                          }
                        },
                        "pivot": {
                          "type": "boolean"
                        }
                      }
                    }
                  }
                },
                "description": "A saga definition, as in Sagas/ (the full format is Sagas/schema/saga.schema.json). Besides this shape, the server checks what a schema cannot say (step references, templates, durations, the environment variables it may read) and answers 422 with the JSON path of every problem."
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
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 2147483647,
                    "nullable": true
                  },
                  "input": {
                    "description": "The run's input; it must fit the saga's inputSchema (checked by the server: 422 with every problem otherwise)"
                  },
                  "idempotencyKey": {
                    "type": "string",
                    "maxLength": 255,
                    "description": "Starting again with the same key returns the first run (200) instead of a second one.",
                    "minLength": 1,
                    "nullable": true
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
                      "type": "string",
                      "nullable": true
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
                    "type": "string",
                    "nullable": true
                  },
                  "by": {
                    "type": "string",
                    "nullable": true,
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
                    "type": "string",
                    "minLength": 1,
                    "description": "The step whose failed compensation to retry; every failed one when left out",
                    "nullable": true
                  },
                  "by": {
                    "type": "string",
                    "description": "Who, for the history",
                    "nullable": true
                  },
                  "note": {
                    "type": "string",
                    "description": "Why, for the history",
                    "nullable": true
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
                    "type": "string",
                    "nullable": true
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
                    "type": "string",
                    "nullable": true,
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
