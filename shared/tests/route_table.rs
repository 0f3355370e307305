//! The route table (`http::Route`) is the one description of the API: the files that
//! describe it again for other tools (`openapi.yaml` for clients and schemathesis,
//! `template.yaml` for API Gateway and SAM, `functions/` and `events/`) must agree.

use secret_rooms::http::Route;
use std::path::PathBuf;

fn project_file(path: &str) -> String {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// The values of `key:` lines, in order (a plain reading: these files are hand-written
/// and keep one key per line).
fn values_of(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix(key))
        .map(|value| value.trim().to_owned())
        .collect()
}

/// Every error code the handlers answer with is one `openapi.yaml` lists (schemathesis
/// checks responses against that list, but only for the codes its cases happen to hit).
#[test]
fn openapi_lists_every_error_code_the_code_answers_with() {
    let openapi = project_file("openapi.yaml");
    let listed: Vec<&str> = openapi
        .lines()
        .skip_while(|line| line.trim() != "enum:")
        .skip(1)
        .map_while(|line| line.trim().strip_prefix("- "))
        .collect();
    assert!(listed.contains(&"malformed_body"), "{listed:?}");
    let mut used = Vec::new();
    let routes = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/routes"))
        .unwrap()
        .map(|entry| {
            format!(
                "shared/src/http/routes/{}",
                entry.unwrap().file_name().to_string_lossy()
            )
        });
    let files: Vec<String> = std::iter::once("shared/src/http/errors.rs".to_owned())
        .chain(routes)
        .collect();
    assert!(files.len() > 8, "{files:?}");
    for file in &files {
        let source = project_file(file);
        // A code is a snake_case literal at the start of an error's arguments.
        for piece in source.split('"').skip(1).step_by(2) {
            let snake =
                piece.contains('_') && piece.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            if snake && !piece.starts_with('_') {
                used.push(piece.to_owned());
            }
        }
    }
    let missing: Vec<&String> = used
        .iter()
        .filter(|code| !listed.contains(&code.as_str()))
        .collect();
    assert!(used.len() > 15, "{used:?}");
    assert!(
        missing.is_empty(),
        "codes openapi.yaml does not list: {missing:?}"
    );
}

#[test]
fn openapi_has_exactly_the_routes_of_the_table() {
    let openapi = project_file("openapi.yaml");
    let paths: Vec<&str> = openapi
        .lines()
        .filter(|line| line.starts_with("  /") && line.ends_with(':'))
        .map(|line| line.trim().trim_end_matches(':'))
        .collect();
    let table: Vec<&str> = Route::ALL.iter().map(|r| r.path()).collect();
    assert_eq!(paths, table);
}

#[test]
fn the_template_gives_each_route_its_own_function() {
    let template = project_file("template.yaml");
    let table_paths: Vec<String> = Route::ALL.iter().map(|r| r.path().to_owned()).collect();
    assert_eq!(values_of(&template, "Path:"), table_paths);
    assert_eq!(
        values_of(&template, "Method:"),
        vec!["POST".to_owned(); Route::ALL.len()]
    );
    // A function per route, then the stream's (not a route).
    let functions: Vec<String> = Route::ALL
        .iter()
        .map(|r| r.function().to_owned())
        .chain(["project-changes".to_owned()])
        .collect();
    assert_eq!(values_of(&template, "Binary:"), functions);
    let code: Vec<String> = functions.iter().map(|f| format!("functions/{f}")).collect();
    assert_eq!(values_of(&template, "CodeUri:"), code);
}

#[test]
fn each_function_crate_and_sample_event_serves_its_route() {
    for route in Route::ALL {
        let function = route.function();
        let main = project_file(&format!("functions/{function}/src/main.rs"));
        let name = route.key().to_owned();
        assert!(
            main.contains(&format!("routes::{route:?}::from_env")),
            "functions/{function} runs the {route:?} handler"
        );
        let event: serde_json::Value =
            serde_json::from_str(&project_file(&format!("events/{function}.json"))).unwrap();
        assert_eq!(event["routeKey"], name.as_str(), "events/{function}.json");
        assert_eq!(event["requestContext"]["routeKey"], name.as_str());
    }
}

/// `Endpoint::all` builds each route once, in the table's order: what the local server
/// serves and the fault tests exercise is every route, none wired by hand.
#[test]
fn endpoint_all_builds_every_route_once_in_order() {
    use secret_rooms::domain::ports::SystemClock;
    use secret_rooms::domain::rooms::{ConnectLimits, RoomKey};
    use secret_rooms::http::{Endpoint, Handler as _, Wiring};
    use secret_rooms::realtime::pusher::{PusherClient, PusherConfig, PusherCredentials};
    use std::sync::Arc;
    let credentials = PusherCredentials::new("key", "secret");
    let pusher = PusherClient::new(&PusherConfig {
        app_id: "1".into(),
        credentials: credentials.clone(),
        base_url: "http://127.0.0.1:9".into(),
        timeout: std::time::Duration::from_secs(1),
    })
    .unwrap();
    let endpoints = Endpoint::all(Wiring {
        store: Arc::new(secret_rooms::store::EmbeddedStore::in_memory().unwrap()),
        realtime: Arc::new(pusher),
        credentials,
        room_key: RoomKey::new(vec![7u8; 32]).unwrap(),
        clock: Arc::new(SystemClock),
        rate: Default::default(),
        ttl: Default::default(),
        connect: ConnectLimits::default(),
        create_limit: None,
        ids: Default::default(),
    });
    let routes: Vec<Route> = endpoints.iter().map(|e| e.route()).collect();
    assert_eq!(routes, Route::ALL);
}
