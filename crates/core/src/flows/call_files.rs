//! An action's `files` as the agent places them: each variable's value turned into bytes by the
//! file's `type` (`plain`: a string as is, other JSON as JSON text; `base64`: decoded; `tar`,
//! `tar.gz`: the base64 of the archive, unpacked by the agent into the directory of the name).
//!
//! A variable that does not exist becomes an empty file (an empty directory for the archive
//! types), as Direktiv hands a missing variable over empty. A value that cannot be decoded is
//! the catchable `faasbox.flow.files`, naming the file and never showing the value.

use base64::Engine as _;
use faasbox_flow::engine::{FileOfCall, FlowError};
use faasbox_flow::model::FileType;
use faasbox_proto::{file_name_problem, CallFile, CallFileKind, CODE_CALL_FILES};
use serde_json::Value;

/// The files of one call, in the agent's form.
pub fn to_call_files(files: &[FileOfCall]) -> Result<Vec<CallFile>, FlowError> {
    files.iter().map(to_call_file).collect()
}

fn to_call_file(file: &FileOfCall) -> Result<CallFile, FlowError> {
    let refuse = |why: String| {
        FlowError::catchable(
            CODE_CALL_FILES,
            format!(
                "file '{}' cannot be placed: {why}",
                file.name.escape_default()
            ),
        )
    };
    if let Some(problem) = file_name_problem(&file.name) {
        return Err(refuse(problem.to_string()));
    }
    let kind = match file.file_type {
        FileType::Plain | FileType::Base64 => CallFileKind::File,
        FileType::Tar => CallFileKind::Tar,
        FileType::TarGz => CallFileKind::TarGz,
    };
    let bytes = match (&file.value, file.file_type) {
        (None, _) => Vec::new(),
        (Some(Value::String(text)), FileType::Plain) => text.as_bytes().to_vec(),
        (Some(value), FileType::Plain) => value.to_string().into_bytes(),
        (Some(Value::String(text)), _) => decode(text).map_err(|e| {
            refuse(format!(
                "its variable is not valid base64 ({}); type {} needs the base64 of the content",
                describe(&e),
                type_name(file.file_type)
            ))
        })?,
        (Some(_), _) => {
            return Err(refuse(format!(
                "its variable is not a string; type {} needs a string holding base64",
                type_name(file.file_type)
            )))
        }
    };
    Ok(CallFile {
        name: file.name.clone(),
        kind,
        data: base64::engine::general_purpose::STANDARD.encode(bytes),
    })
}

/// Base64 (standard alphabet, padding optional), ignoring line breaks and spaces.
fn decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD_NO_PAD.decode(compact.trim_end_matches('='))
}

/// A decode error without the offending byte (it is part of the value, maybe a secret).
fn describe(e: &base64::DecodeError) -> String {
    match e {
        base64::DecodeError::InvalidByte(offset, _)
        | base64::DecodeError::InvalidLastSymbol(offset, _) => {
            format!("a character that is not base64 at offset {offset}")
        }
        base64::DecodeError::InvalidLength(_) => "its length is not that of base64".to_string(),
        base64::DecodeError::InvalidPadding => "bad padding".to_string(),
    }
}

fn type_name(file_type: FileType) -> &'static str {
    match file_type {
        FileType::Plain => "plain",
        FileType::Base64 => "base64",
        FileType::Tar => "tar",
        FileType::TarGz => "tar.gz",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn of(name: &str, file_type: FileType, value: Option<Value>) -> FileOfCall {
        FileOfCall {
            name: name.into(),
            file_type,
            value,
        }
    }

    fn bytes(file: &CallFile) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(&file.data)
            .unwrap()
    }

    #[test]
    fn values_become_bytes_by_type() {
        let files = to_call_files(&[
            of("a", FileType::Plain, Some(json!("text\n"))),
            of("b", FileType::Plain, Some(json!({"x": [1, 2]}))),
            of("c", FileType::Plain, None),
            of("d", FileType::Base64, Some(json!("aGVs\nbG8="))),
            of("e", FileType::Base64, Some(json!("aGVsbG8"))),
            of("f", FileType::TarGz, Some(json!("AAEC"))),
            of("g", FileType::Tar, None),
        ])
        .unwrap();
        let got: Vec<(CallFileKind, Vec<u8>)> = files.iter().map(|f| (f.kind, bytes(f))).collect();
        assert_eq!(
            got,
            [
                (CallFileKind::File, b"text\n".to_vec()),
                (CallFileKind::File, br#"{"x":[1,2]}"#.to_vec()),
                (CallFileKind::File, Vec::new()),
                (CallFileKind::File, b"hello".to_vec()),
                (CallFileKind::File, b"hello".to_vec()),
                (CallFileKind::TarGz, vec![0, 1, 2]),
                (CallFileKind::Tar, Vec::new()),
            ]
        );
    }

    #[test]
    fn bad_values_and_names_are_catchable_and_keep_the_value_out() {
        let err =
            to_call_files(&[of("key.pem", FileType::Base64, Some(json!("s3cr3t!!")))]).unwrap_err();
        assert!(err.catchable);
        assert_eq!(err.code, CODE_CALL_FILES);
        assert!(
            err.message
                .starts_with("file 'key.pem' cannot be placed: its variable is not valid base64"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("s3cr3t"), "{}", err.message);
        let err = to_call_files(&[of("t", FileType::Tar, Some(json!(42)))]).unwrap_err();
        assert!(
            err.message
                .contains("type tar needs a string holding base64"),
            "{}",
            err.message
        );
        let err = to_call_files(&[of("../x", FileType::Plain, None)]).unwrap_err();
        assert!(
            err.catchable && err.message.contains("`..`"),
            "{}",
            err.message
        );
    }
}
