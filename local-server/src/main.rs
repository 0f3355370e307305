//! `cargo run`: the whole secret-rooms backend on one machine, with nothing to set up.

use local_server::options::{Options, Parsed, USAGE};
use secret_rooms::config::process_env;
use std::process::ExitCode;

async fn verify(path: &std::path::Path) -> ExitCode {
    let report = match secret_rooms::store::EmbeddedStore::open(path) {
        Ok(store) => local_server::invariants::check(&store).await,
        Err(e) => Err(e),
    };
    match report {
        Ok(report) => {
            println!("{}: {report}", path.display());
            if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("secret-rooms-local verify: {}: {e:#}", path.display());
            ExitCode::FAILURE
        }
    }
}

async fn reproject(table: &str, timeouts: secret_rooms::store::Timeouts) -> ExitCode {
    let endpoint = secret_rooms::config::dynamodb_endpoint(&process_env);
    let store = secret_rooms::store::DynamoStore::from_default_chain(
        table.to_owned(),
        timeouts,
        endpoint.as_deref(),
    )
    .await;
    match secret_rooms::projector::reproject_table(&store).await {
        Ok(items) => {
            println!("{table}: room lists rebuilt from {items} items");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("secret-rooms-local reproject: {table}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    secret_rooms::telemetry::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match Options::parse(&args, &process_env) {
        Ok(Parsed::Run(options)) => *options,
        Ok(Parsed::Verify(path)) => return verify(&path).await,
        Ok(Parsed::Reproject { table, timeouts }) => return reproject(&table, timeouts).await,
        Ok(Parsed::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("secret-rooms-local: {e}");
            return ExitCode::from(2);
        }
    };
    let embedded_realtime = matches!(
        options.realtime,
        local_server::options::RealtimeChoice::Embedded
    );
    let running = match local_server::start(options).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!("secret-rooms-local: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let addr = running.addr;
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        addr.ip().to_string()
    };
    let port = addr.port();
    eprintln!("secret-rooms local server");
    eprintln!("  Chat page http://{host}:{port}/");
    eprintln!(
        "  API       http://{host}:{port}  (POST /users/create, /users/{{publicId}}/connect, /users/rooms, /users/rotate, /rooms/{{roomId}}/message, /rooms/{{roomId}}/messages, /rooms/{{roomId}}/block, /pusher/auth)"
    );
    eprintln!("  Store     {}", running.store_description);
    if embedded_realtime {
        eprintln!(
            "  Realtime  ws://{host}:{port}/app/{}  (Pusher protocol 7)",
            running.pusher_key
        );
        eprintln!(
            "  pusher-js new Pusher(\"{}\", {{ wsHost: \"{host}\", wsPort: {port}, forceTLS: false, enabledTransports: [\"ws\"], cluster: \"local\", channelAuthorization: {{ endpoint: \"http://{host}:{port}/pusher/auth\", transport: \"ajax\", params: {{ privateId }} }} }})",
            running.pusher_key
        );
    } else {
        eprintln!(
            "  Realtime  Pusher app key {} (from PUSHER_*)",
            running.pusher_key
        );
    }
    eprintln!("Ctrl-C stops it.");

    let stop = tokio::signal::ctrl_c();
    tokio::select! {
        result = running.wait() => match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => { eprintln!("secret-rooms-local: {e:#}"); ExitCode::FAILURE }
        },
        _ = stop => {
            eprintln!("stopping");
            ExitCode::SUCCESS
        }
    }
}
