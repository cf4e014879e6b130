//! `mini-docker volume`: named volumes.

use super::*;

#[derive(Subcommand)]
pub(super) enum VolumeCommand {
    /// Create a volume
    Create { name: Option<String> },
    /// List volumes
    Ls {
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show a volume
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes (refused while a container uses one)
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove anonymous volumes no container uses
    Prune {
        #[arg(short, long)]
        force: bool,
    },
}

pub(super) async fn volume(client: &Client, command: VolumeCommand) -> Result<i32> {
    match command {
        VolumeCommand::Create { name } => {
            let v = client
                .json(
                    "POST",
                    "/volumes/create",
                    Some(&json!({"Name": name.unwrap_or_default()})),
                )
                .await?;
            println!("{}", v["Name"].as_str().unwrap_or(""));
        }
        VolumeCommand::Ls { quiet } => {
            let v = client.json("GET", "/volumes", None).await?;
            if !quiet {
                println!("{:<10} VOLUME NAME", "DRIVER");
            }
            for vol in v["Volumes"].as_array().into_iter().flatten() {
                let name = vol["Name"].as_str().unwrap_or("");
                if quiet {
                    println!("{name}");
                } else {
                    println!("{:<10} {name}", vol["Driver"].as_str().unwrap_or(""));
                }
            }
        }
        VolumeCommand::Inspect { names } => {
            return inspect_each(client, "/volumes", &names, "").await;
        }
        VolumeCommand::Rm { names } => return remove_each(client, "/volumes", &names, "").await,
        VolumeCommand::Prune { force: _ } => {
            let v = client.json("POST", "/volumes/prune", None).await?;
            for name in v["VolumesDeleted"].as_array().into_iter().flatten() {
                println!("{}", name.as_str().unwrap_or(""));
            }
        }
    }
    Ok(0)
}

#[derive(Args)]
pub(super) struct VolumeArgs {
    #[command(subcommand)]
    pub(super) command: VolumeCommand,
}
