import Testing
@testable import SkaldCore
import SkaldTestSupport

@Suite(.timeLimit(.minutes(10))) struct EnvironmentPolicyTests {
    @Test func namesAndPrefixesAreAllowedAndSkaldsOwnNeverAre() throws {
        let policy = try EnvironmentPolicy.parse("INVENTORY_URL, PAYMENTS_*")
        #expect(policy.allows("INVENTORY_URL"))
        #expect(policy.allows("PAYMENTS_URL"))
        #expect(!policy.allows("INVENTORY_URL_2"))
        #expect(!policy.allows("DATABASE_PASSWORD"))
        #expect(!EnvironmentPolicy.allButReserved.allows("SKALD_TOKEN"))
        #expect(try !EnvironmentPolicy.parse("*").allows("SKALD_DB"))
        #expect(try !EnvironmentPolicy.parse("SKALD_TOKEN").allowing(["SKALD_TOKEN"]).allows("SKALD_TOKEN"))
        #expect(EnvironmentPolicy.allButReserved.filter(["A": "1", "SKALD_TOKEN": "t"]) == ["A": "1"])
        #expect(try EnvironmentPolicy.parse("").filter(["A": "1"]).isEmpty)
    }

    @Test func aStarMatchesAnyCharactersAnywhereInTheName() throws {
        let policy = try EnvironmentPolicy.parse("*_URL,APP_*_KEY")
        #expect(policy.allows("KYC_URL") && policy.allows("_URL") && policy.allows("A_B_URL"))
        #expect(!policy.allows("KYC_URL_2") && !policy.allows("URL"))
        #expect(policy.allows("APP_PAYMENTS_KEY") && policy.allows("APP__KEY"))
        #expect(!policy.allows("APP_KEY") && !policy.allows("APP_X_KEYS"))
        #expect(!policy.allows("SKALD_URL"), "Skald's own variables never, whatever the pattern")
        #expect(try EnvironmentPolicy.parse("A*B*B").allows("AXBB") && !EnvironmentPolicy.parse("A*B*B").allows("AB"))
    }

    @Test func aMalformedEntryIsNamed() {
        #expect {
            _ = try EnvironmentPolicy.parse("GOOD,bad-name")
        } throws: { error in
            (error as? EnvironmentPolicyError)?.message.contains("\"bad-name\"") == true
        }
    }

    @Test func eachUseOfAVariableNotAllowedIsReportedAtItsField() throws {
        let definition = try saga(#"""
            {"name": "t", "version": 1, "steps": [{"name": "s",
              "request": {"method": "POST", "url": "{{env.ORDERS_URL}}/x/{{env.SKALD_TOKEN}}", "headers": {"X-Db": "{{env.DATABASE_PASSWORD}}"},
                          "body": {"nested": ["{{env.DATABASE_PASSWORD}}"]}}}]}
            """#)
        let problems = try EnvironmentPolicy.parse("ORDERS_*").problems(in: definition)
        #expect(problems.map { $0.path?.description ?? "" } == ["steps[0].request.url", "steps[0].request.headers.X-Db", "steps[0].request.body.nested[0]"])
        #expect(problems[0].message.contains("Skald's own variables"))
        #expect(problems[1].message.contains("--allow-env DATABASE_PASSWORD"))
    }

    @Test func errorsShowTheReferenceInsteadOfTheValue() throws {
        let context = TemplateContext(input: [:], runID: "R", env: ["PAYMENTS_URL": "http://10.0.0.7:81", "KEY": "s3cr3t-value", "ONE": "1"])
        #expect(try context.masked.render(try TemplateString(parsing: "{{env.PAYMENTS_URL}}/charges/{{run.id}}"), encodingForURL: true)
            == "{{env.PAYMENTS_URL}}/charges/R")
        let echoed = #"HTTP 400: {"seen":"http://10.0.0.7:81/charges","key":"s3cr3t-value","n":1}"#
        #expect(context.maskingEnvironment(in: echoed, names: ["PAYMENTS_URL", "KEY", "ONE"])
            == #"HTTP 400: {"seen":"{{env.PAYMENTS_URL}}/charges","key":"{{env.KEY}}","n":1}"#)
    }

    @Test func writeOnlyInputFieldsAreMaskedAndNeverEchoed() throws {
        let schema = try #require(try saga(#"""
            {"name": "t", "version": 1, "inputSchema": {"type": "object", "properties": {
                "card": {"type": "string", "writeOnly": true, "enum": ["4242"]},
                "items": {"type": "array", "items": {"type": "object", "properties": {"token": {"type": "string", "writeOnly": true}}}},
                "sku": {"type": "string"}}},
             "steps": [{"name": "s", "request": {"method": "GET", "url": "http://127.0.0.1:1/"}}]}
            """#).inputSchema)
        let input: JSONValue = ["card": "4000-secret", "items": [["token": "t-1", "n": 1]], "sku": "MUG"]
        #expect(schema.masking(input) == ["card": "***", "items": [["token": "***", "n": 1]], "sku": "MUG"])
        let problems = schema.violations(of: input)
        #expect(problems.contains { $0.contains("input.card must be one of") })
        #expect(!problems.joined().contains("4000-secret"), "\(problems)")
        #expect(!EnvironmentPolicyTests.problemsOf(#"{"type": "object", "writeOnly": "yes"}"#).isEmpty)
    }

    static func problemsOf(_ inputSchema: String) -> [DefinitionProblem] {
        problems(#"{"name": "t", "version": 1, "inputSchema": \#(inputSchema), "steps": [{"name": "s", "request": {"method": "GET", "url": "http://127.0.0.1:1/"}}]}"#)
    }

    @Test func secretHeadersMustNameHeadersOfTheCall() throws {
        let call = try #require(try saga(#"""
            {"name": "t", "version": 1, "steps": [{"name": "s", "request": {"method": "GET", "url": "http://127.0.0.1:1/",
              "headers": {"X-Api-Key": "k", "Authorization": "Bearer b"}, "secretHeaders": ["x-api-key"]}}]}
            """#).steps[0].request)
        #expect(call.isSecret(header: "X-Api-Key"))
        #expect(call.isSecret(header: "authorization"))
        #expect(!call.isSecret(header: "Accept"))
        let found = problems(#"""
            {"name": "t", "version": 1, "steps": [{"name": "s", "request": {"method": "GET", "url": "http://127.0.0.1:1/", "secretHeaders": ["X-Nope"]}}]}
            """#)
        #expect(found.first?.path?.description == "steps[0].request.secretHeaders[0]")
    }
}
