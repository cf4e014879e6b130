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
            let request = json!({"Name": name.unwrap_or_default()});
            let created: chapter_06::api::VolumeSummary = client
                .typed("POST", "/volumes/create", Some(&request))
                .await?;
            println!("{}", created.name);
        }
        VolumeCommand::Ls { quiet } => {
            if !quiet {
                println!("{:<10} VOLUME NAME", "DRIVER");
            }
            for vol in client.volumes().await?.volumes.into_iter().flatten() {
                if quiet {
                    println!("{}", vol.name);
                } else {
                    println!("{:<10} {}", vol.driver, vol.name);
                }
            }
        }
        VolumeCommand::Inspect { names } => {
            return inspect_each(client, "/volumes", &names, "").await;
        }
        VolumeCommand::Rm { names } => return remove_each(client, "/volumes", &names, "").await,
        VolumeCommand::Prune { force: _ } => {
            let report = client.prune("/volumes", "").await?;
            for name in report.volumes_deleted.into_iter().flatten() {
                println!("{name}");
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
