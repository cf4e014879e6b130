//! `mini-docker network`: bridge networks and who is on them.

use super::*;

#[derive(Subcommand)]
pub(super) enum NetworkCommand {
    /// Create a bridge network
    Create {
        name: String,
        /// e.g. 10.10.0.0/24 [default: the next free /24 of the pool]
        #[arg(long)]
        subnet: Option<String>,
    },
    /// List networks
    Ls,
    /// Show networks
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove networks (refused while a container is on one)
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Put a container on one more network (at once if it runs)
    Connect {
        /// Another name of the container on that network
        #[arg(long)]
        alias: Vec<String>,
        network: String,
        container: String,
    },
    /// Take a container off a network it joined
    Disconnect { network: String, container: String },
}

pub(super) async fn network(client: &Client, command: NetworkCommand) -> Result<i32> {
    match command {
        NetworkCommand::Create { name, subnet } => {
            let mut body = json!({"Name": name, "Driver": "bridge"});
            if let Some(s) = subnet {
                body["IPAM"] = json!({"Config": [{"Subnet": s}]});
            }
            let created: chapter_06::api::IdResponse = client
                .typed("POST", "/networks/create", Some(&body))
                .await?;
            println!("{}", created.id);
        }
        NetworkCommand::Ls => {
            println!("{:<14} {:<20} {:<8} SUBNET", "NETWORK ID", "NAME", "DRIVER");
            for n in client.networks().await? {
                let subnet = n.ipam.config.iter().flatten().next();
                println!(
                    "{:<14} {:<20} {:<8} {}",
                    &n.id[..n.id.len().min(12)],
                    n.name,
                    n.driver,
                    subnet.map_or("", |p| p.subnet.as_str())
                );
            }
        }
        NetworkCommand::Inspect { names } => {
            return inspect_each(client, "/networks", &names, "").await;
        }
        NetworkCommand::Rm { names } => return remove_each(client, "/networks", &names, "").await,
        NetworkCommand::Connect {
            alias,
            network,
            container,
        } => {
            let request = chapter_06::api::NetworkConnect {
                container,
                endpoint_config: Some(chapter_06::api::EndpointSettings {
                    aliases: Some(alias),
                    ipam_config: None,
                }),
                force: false,
            };
            client.connect(&network, &request).await?;
        }
        NetworkCommand::Disconnect { network, container } => {
            let body = json!({"Container": container});
            client
                .call(
                    "POST",
                    &format!("/networks/{}/disconnect", enc(&network)),
                    Some(&body),
                )
                .await?;
        }
    }
    Ok(0)
}

#[derive(Args)]
pub(super) struct NetworkArgs {
    #[command(subcommand)]
    pub(super) command: NetworkCommand,
}
