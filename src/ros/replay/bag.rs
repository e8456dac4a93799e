//! rosbag2 bags in MCAP storage: reading every message of a bag (a directory with
//! `metadata.yaml`, or one `.mcap` file) and writing one as `ros2 bag record` does (profile
//! `ros2`, `ros2msg` schemas, CDR messages, zstd chunks, and for a directory a `metadata.yaml`
//! of version 9), readable by rosbag2 and the `rosbags` Python library.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, Result};

/// rosbag2's metadata version in Jazzy.
pub const METADATA_VERSION: u32 = 9;

/// The QoS profile written for every recorded topic (reliable, volatile, keep last 10: what
/// the node offers), as rosbag2 v9 stores it in the channel metadata.
const OFFERED_QOS_YAML: &str = "- avoid_ros_namespace_conventions: false\n  deadline:\n    \
    nsec: 0\n    sec: 0\n  depth: 10\n  durability: volatile\n  history: keep_last\n  lifespan:\n    \
    nsec: 0\n    sec: 0\n  liveliness: automatic\n  liveliness_lease_duration:\n    nsec: 0\n    \
    sec: 0\n  reliability: reliable";

fn bag_error(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("bag {}: {what}", path.display()))
}

/// A channel of a bag: its topic and schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Topic {
    pub name: String,
    /// `pkg/msg/Type`.
    pub type_name: String,
    pub schema_encoding: String,
    pub schema: Vec<u8>,
    pub type_hash: Option<String>,
}

/// One recorded message.
#[derive(Debug, Clone, PartialEq)]
pub struct BagMessage {
    /// Index into [`InputBag::topics`].
    pub topic: usize,
    /// Receive time, nanoseconds (bag time).
    pub log_time_ns: u64,
    /// CDR bytes (with the 4-byte encapsulation header).
    pub data: Vec<u8>,
}

/// Every message of a bag, in log-time order (stable for equal times).
#[derive(Debug, Clone)]
pub struct InputBag {
    pub topics: Vec<Topic>,
    pub messages: Vec<BagMessage>,
    /// `custom_data` of `metadata.yaml` (empty for a bare `.mcap`).
    pub custom_data: BTreeMap<String, String>,
}

impl InputBag {
    pub fn topic_index(&self, name: &str) -> Option<usize> {
        self.topics.iter().position(|t| t.name == name)
    }
}

#[derive(Deserialize)]
struct MetadataFile {
    rosbag2_bagfile_information: BagInfo,
}

#[derive(Deserialize)]
struct BagInfo {
    storage_identifier: String,
    relative_file_paths: Vec<String>,
    #[serde(default)]
    compression_mode: String,
    #[serde(default)]
    custom_data: Option<BTreeMap<String, String>>,
}

/// Reads a bag: a directory with `metadata.yaml` (MCAP storage) or a single `.mcap` file.
pub fn read_bag(path: &Path) -> Result<InputBag> {
    let (files, custom_data) = if path.is_dir() {
        let meta_path = path.join("metadata.yaml");
        let text = std::fs::read_to_string(&meta_path).map_err(|e| Error::io(&meta_path, e))?;
        let meta: MetadataFile = serde_yaml::from_str(&text).map_err(|source| Error::Yaml {
            path: meta_path.clone(),
            source,
        })?;
        let info = meta.rosbag2_bagfile_information;
        if info.storage_identifier != "mcap" {
            return Err(bag_error(
                path,
                format!("storage `{}`, expected `mcap`", info.storage_identifier),
            ));
        }
        if !matches!(info.compression_mode.as_str(), "" | "none") {
            return Err(bag_error(
                path,
                format!(
                    "compression_mode `{}` is not supported (MCAP chunk compression is)",
                    info.compression_mode
                ),
            ));
        }
        let files = info
            .relative_file_paths
            .iter()
            .map(|f| path.join(f))
            .collect();
        (files, info.custom_data.unwrap_or_default())
    } else {
        (vec![path.to_path_buf()], BTreeMap::new())
    };
    let mut topics: Vec<Topic> = Vec::new();
    let mut messages = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).map_err(|e| Error::io(&file, e))?;
        let stream = mcap::MessageStream::new(&bytes).map_err(|e| bag_error(&file, e))?;
        for message in stream {
            let message = message.map_err(|e| bag_error(&file, e))?;
            let channel = &message.channel;
            let schema = channel.schema.as_ref().ok_or_else(|| {
                bag_error(&file, format!("topic `{}` has no schema", channel.topic))
            })?;
            if channel.message_encoding != "cdr" {
                return Err(bag_error(
                    &file,
                    format!(
                        "topic `{}` is encoded as `{}`, expected `cdr`",
                        channel.topic, channel.message_encoding
                    ),
                ));
            }
            let topic = Topic {
                name: channel.topic.clone(),
                type_name: schema.name.clone(),
                schema_encoding: schema.encoding.clone(),
                schema: schema.data.to_vec(),
                type_hash: channel.metadata.get("topic_type_hash").cloned(),
            };
            let index = match topics.iter().position(|t| t.name == topic.name) {
                Some(i) if topics[i].type_name == topic.type_name => i,
                Some(i) => {
                    return Err(bag_error(
                        &file,
                        format!(
                            "topic `{}` has two types: {} and {}",
                            topic.name, topics[i].type_name, topic.type_name
                        ),
                    ))
                }
                None => {
                    topics.push(topic);
                    topics.len() - 1
                }
            };
            messages.push(BagMessage {
                topic: index,
                log_time_ns: message.log_time,
                data: message.data.to_vec(),
            });
        }
    }
    messages.sort_by_key(|m| m.log_time_ns);
    Ok(InputBag {
        topics,
        messages,
        custom_data,
    })
}

struct OutTopic {
    topic: Topic,
    channel_id: u16,
    count: u64,
}

/// Writes a bag: `out` ending in `.mcap` is one file, anything else a bag directory
/// (`<out>/metadata.yaml` + `<out>/<name>_0.mcap`, as `ros2 bag record -o <out>` names it).
pub struct BagWriter {
    writer: mcap::Writer<BufWriter<File>>,
    dir: Option<PathBuf>,
    file_name: String,
    topics: Vec<OutTopic>,
    start_ns: u64,
    end_ns: u64,
}

impl BagWriter {
    /// Creates the bag; refuses to overwrite an existing path.
    pub fn create(out: &Path) -> Result<Self> {
        if out.exists() {
            return Err(bag_error(
                out,
                "exists already; remove it or choose another path",
            ));
        }
        let single = out.extension().is_some_and(|e| e == "mcap");
        let (dir, file_path) = if single {
            (None, out.to_path_buf())
        } else {
            std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
            let stem = out
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "replay".into());
            (Some(out.to_path_buf()), out.join(format!("{stem}_0.mcap")))
        };
        let file = File::create(&file_path).map_err(|e| Error::io(&file_path, e))?;
        let options = mcap::WriteOptions::new()
            .profile("ros2")
            .library(format!("diffusion_planner-{}", env!("CARGO_PKG_VERSION")))
            .compression(Some(mcap::Compression::Zstd));
        let writer = options
            .create(BufWriter::new(file))
            .map_err(|e| bag_error(&file_path, e))?;
        Ok(BagWriter {
            writer,
            dir,
            file_name: file_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            topics: Vec::new(),
            start_ns: u64::MAX,
            end_ns: 0,
        })
    }

    fn path(&self) -> PathBuf {
        match &self.dir {
            Some(dir) => dir.join(&self.file_name),
            None => PathBuf::from(&self.file_name),
        }
    }

    /// Adds a topic (once per name) and returns its index for [`Self::write`].
    pub fn add_topic(&mut self, topic: Topic) -> Result<usize> {
        if let Some(i) = self.topics.iter().position(|t| t.topic.name == topic.name) {
            return Ok(i);
        }
        let path = self.path();
        let schema_id = self
            .writer
            .add_schema(&topic.type_name, &topic.schema_encoding, &topic.schema)
            .map_err(|e| bag_error(&path, e))?;
        let mut metadata = BTreeMap::new();
        metadata.insert("offered_qos_profiles".to_string(), OFFERED_QOS_YAML.into());
        if let Some(hash) = &topic.type_hash {
            metadata.insert("topic_type_hash".to_string(), hash.clone());
        }
        let channel_id = self
            .writer
            .add_channel(schema_id, &topic.name, "cdr", &metadata)
            .map_err(|e| bag_error(&path, e))?;
        self.topics.push(OutTopic {
            topic,
            channel_id,
            count: 0,
        });
        Ok(self.topics.len() - 1)
    }

    /// Writes one message (CDR bytes) at `time_ns` (log and publish time).
    pub fn write(&mut self, topic: usize, time_ns: u64, data: &[u8]) -> Result<()> {
        let path = self.path();
        let out = self
            .topics
            .get_mut(topic)
            .ok_or_else(|| bag_error(&path, format!("no topic with index {topic}")))?;
        let header = mcap::records::MessageHeader {
            channel_id: out.channel_id,
            sequence: u32::try_from(out.count).unwrap_or(u32::MAX),
            log_time: time_ns,
            publish_time: time_ns,
        };
        out.count += 1;
        self.start_ns = self.start_ns.min(time_ns);
        self.end_ns = self.end_ns.max(time_ns);
        self.writer
            .write_to_known_channel(&header, data)
            .map_err(|e| bag_error(&path, e))
    }

    /// Messages written per topic name.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.topics
            .iter()
            .map(|t| (t.topic.name.clone(), t.count))
            .collect()
    }

    /// rosbag2's bag information (the body of `metadata.yaml`).
    fn info(&self, custom_data: &BTreeMap<String, String>) -> serde_yaml::Value {
        let count: u64 = self.topics.iter().map(|t| t.count).sum();
        let start = if count == 0 { 0 } else { self.start_ns };
        let duration = self.end_ns.saturating_sub(start);
        let qos: serde_yaml::Value =
            serde_yaml::from_str(OFFERED_QOS_YAML).unwrap_or(serde_yaml::Value::Null);
        let topics: Vec<serde_yaml::Value> = self
            .topics
            .iter()
            .map(|t| {
                serde_yaml::to_value(serde_json::json!({
                    "topic_metadata": {
                        "name": t.topic.name,
                        "type": t.topic.type_name,
                        "serialization_format": "cdr",
                        "offered_qos_profiles": serde_json::to_value(&qos).unwrap_or_default(),
                        "type_description_hash": t.topic.type_hash.clone().unwrap_or_default(),
                    },
                    "message_count": t.count,
                }))
                .unwrap_or(serde_yaml::Value::Null)
            })
            .collect();
        let info = serde_json::json!({
            "version": METADATA_VERSION,
            "storage_identifier": "mcap",
            "duration": {"nanoseconds": duration},
            "starting_time": {"nanoseconds_since_epoch": start},
            "message_count": count,
            "compression_format": "",
            "compression_mode": "",
            "relative_file_paths": [self.file_name],
            "files": [{
                "path": self.file_name,
                "starting_time": {"nanoseconds_since_epoch": start},
                "duration": {"nanoseconds": duration},
                "message_count": count,
            }],
            "custom_data": custom_data,
            "ros_distro": "jazzy",
        });
        let mut value = serde_yaml::to_value(info).unwrap_or(serde_yaml::Value::Null);
        if let serde_yaml::Value::Mapping(map) = &mut value {
            map.insert("topics_with_message_count".into(), topics.into());
        }
        value
    }

    /// Finishes the MCAP file (summary, the `rosbag2` metadata record) and, for a directory,
    /// writes `metadata.yaml`. `custom_data` goes into both.
    pub fn finish(mut self, custom_data: &BTreeMap<String, String>) -> Result<()> {
        let path = self.path();
        let info = self.info(custom_data);
        let info_text =
            serde_yaml::to_string(&info).map_err(|e| bag_error(&path, format!("metadata: {e}")))?;
        let mut record = BTreeMap::new();
        record.insert("serialized_metadata".to_string(), info_text);
        self.writer
            .write_metadata(&mcap::records::Metadata {
                name: "rosbag2".into(),
                metadata: record,
            })
            .map_err(|e| bag_error(&path, e))?;
        self.writer.finish().map_err(|e| bag_error(&path, e))?;
        if let Some(dir) = &self.dir {
            let mut root = serde_yaml::Mapping::new();
            root.insert("rosbag2_bagfile_information".into(), info);
            let text = serde_yaml::to_string(&root)
                .map_err(|e| bag_error(dir, format!("metadata: {e}")))?;
            let meta_path = dir.join("metadata.yaml");
            std::fs::write(&meta_path, text).map_err(|e| Error::io(meta_path, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str) -> Topic {
        Topic {
            name: name.into(),
            type_name: "std_msgs/msg/String".into(),
            schema_encoding: "ros2msg".into(),
            schema: b"string data\n".to_vec(),
            type_hash: Some("RIHS01_00".into()),
        }
    }

    /// CDR of std_msgs/String `text` (little endian, encapsulation header first).
    fn cdr_string(text: &str) -> Vec<u8> {
        let mut out = vec![0, 1, 0, 0];
        out.extend(((text.len() + 1) as u32).to_le_bytes());
        out.extend(text.as_bytes());
        out.push(0);
        out
    }

    #[test]
    fn a_written_bag_directory_reads_back_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let mut writer = BagWriter::create(&out).unwrap();
        let a = writer.add_topic(topic("/a")).unwrap();
        let b = writer.add_topic(topic("/b")).unwrap();
        assert_eq!(writer.add_topic(topic("/a")).unwrap(), a);
        writer.write(b, 30, &cdr_string("late")).unwrap();
        writer.write(a, 10, &cdr_string("early")).unwrap();
        writer.write(a, 20, &cdr_string("middle")).unwrap();
        let mut custom = BTreeMap::new();
        custom.insert("k".to_string(), "v".to_string());
        assert_eq!(writer.counts()["/a"], 2);
        writer.finish(&custom).unwrap();
        assert!(out.join("run_0.mcap").is_file());
        let bag = read_bag(&out).unwrap();
        assert_eq!(bag.custom_data, custom);
        let times: Vec<u64> = bag.messages.iter().map(|m| m.log_time_ns).collect();
        assert_eq!(times, [10, 20, 30]);
        assert_eq!(bag.messages[0].data, cdr_string("early"));
        let b_index = bag.topic_index("/b").unwrap();
        assert_eq!(bag.messages[2].topic, b_index);
        assert_eq!(bag.topics[b_index], topic("/b"));
        let meta = std::fs::read_to_string(out.join("metadata.yaml")).unwrap();
        for needle in [
            "version: 9",
            "storage_identifier: mcap",
            "message_count: 3",
            "nanoseconds: 20",
            "nanoseconds_since_epoch: 10",
            "run_0.mcap",
            "reliability: reliable",
        ] {
            assert!(meta.contains(needle), "{needle} in\n{meta}");
        }
        assert!(BagWriter::create(&out).is_err(), "no overwrite");
        let single = dir.path().join("one.mcap");
        let mut writer = BagWriter::create(&single).unwrap();
        let a = writer.add_topic(topic("/a")).unwrap();
        writer.write(a, 5, &cdr_string("x")).unwrap();
        writer.finish(&BTreeMap::new()).unwrap();
        assert_eq!(read_bag(&single).unwrap().messages.len(), 1);
    }

    #[test]
    fn unreadable_bags_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_bag(dir.path()).unwrap_err().to_string();
        assert!(err.contains("metadata.yaml"), "{err}");
        std::fs::write(
            dir.path().join("metadata.yaml"),
            "rosbag2_bagfile_information:\n  storage_identifier: sqlite3\n  relative_file_paths: [x.db3]\n",
        )
        .unwrap();
        let err = read_bag(dir.path()).unwrap_err().to_string();
        assert!(err.contains("`sqlite3`"), "{err}");
        let junk = dir.path().join("junk.mcap");
        std::fs::write(&junk, b"not an mcap").unwrap();
        assert!(read_bag(&junk)
            .unwrap_err()
            .to_string()
            .contains("junk.mcap"));
    }
}
