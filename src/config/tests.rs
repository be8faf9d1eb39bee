use super::*;
use std::path::{Path, PathBuf};

#[test]
fn the_cli_definition_is_consistent() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
}

fn serve_args(flags: &[String]) -> ServeArgs {
    let argv = ["reswhis", "serve"].map(String::from).into_iter();
    match Cli::try_parse_from(argv.chain(flags.iter().cloned())) {
        Ok(Cli {
            command: Some(Command::Serve(args)),
            ..
        }) => args,
        other => panic!("{flags:?}: {other:?}"),
    }
}

#[test]
fn model_and_policy_flags_round_trip() {
    let flags = "--model /m/ggml-base.bin --models-dir /data/modèles --language de \
                 --threads 3 --beam-size 5 --gpu false --full-audio-ctx true --weights file \
                 --min-chunk-size 0.35 --buffer-trimming-sec 9.125 --prompt-chars 120 \
                 --trim-context-sec 0.1 --vac false --vad true --vad-model /v.bin \
                 --vac-min-silence-ms 750 --vac-threshold 0.45 --vac-padding-ms 120";
    let given = serve_args(
        &flags
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>(),
    );
    let defaults = serve_args(&[]);
    // Every field is set to something other than its default, so a field that
    // to_args leaves out cannot come back equal by chance.
    let ModelArgs {
        model,
        models_dir,
        language,
        threads,
        beam_size,
        gpu,
        full_audio_ctx,
        weights,
    } = &given.model;
    assert_ne!(*model, defaults.model.model);
    assert_ne!(*models_dir, defaults.model.models_dir);
    assert_ne!(*language, defaults.model.language);
    assert_ne!(*threads, defaults.model.threads);
    assert_ne!(*beam_size, defaults.model.beam_size);
    assert_ne!(*gpu, defaults.model.gpu);
    assert_ne!(*full_audio_ctx, defaults.model.full_audio_ctx);
    assert_ne!(*weights, defaults.model.weights);
    let PolicyArgs {
        min_chunk_size,
        buffer_trimming_sec,
        prompt_chars,
        trim_context_sec,
    } = &given.policy;
    assert_ne!(*min_chunk_size, defaults.policy.min_chunk_size);
    assert_ne!(*buffer_trimming_sec, defaults.policy.buffer_trimming_sec);
    assert_ne!(*prompt_chars, defaults.policy.prompt_chars);
    assert_ne!(*trim_context_sec, defaults.policy.trim_context_sec);
    let VoiceArgs {
        vac,
        vad,
        vad_model,
        vac_min_silence_ms,
        vac_threshold,
        vac_padding_ms,
    } = &given.voice;
    assert_ne!(*vac, defaults.voice.vac);
    assert_ne!(*vad, defaults.voice.vad);
    assert_ne!(*vad_model, defaults.voice.vad_model);
    assert_ne!(*vac_min_silence_ms, defaults.voice.vac_min_silence_ms);
    assert_ne!(*vac_threshold, defaults.voice.vac_threshold);
    assert_ne!(*vac_padding_ms, defaults.voice.vac_padding_ms);

    for args in [given, defaults] {
        let flags = [
            args.model.to_args(),
            args.policy.to_args(),
            args.voice.to_args(),
        ]
        .concat();
        let again = serve_args(&flags);
        assert_eq!(again.model, args.model, "{flags:?}");
        assert_eq!(again.policy, args.policy, "{flags:?}");
        assert_eq!(again.voice, args.voice, "{flags:?}");
    }
}

#[test]
fn flags_parse_and_default() {
    let cli = Cli::try_parse_from(["reswhis", "--port", "0", "--min-chunk-size", "0.5"]).unwrap();
    assert!(cli.command.is_none());
    assert_eq!(cli.serve.port, 0);
    assert_eq!(cli.serve.policy.min_chunk_size, Some(0.5));
    // Unset, the update interval is the model's default.
    let unset = serve_args(&[]).policy;
    assert_eq!(
        (unset.min_chunk_sec(true), unset.min_chunk_sec(false)),
        (0.75, 1.0)
    );
    assert!(unset.to_args().iter().all(|a| a != "--min-chunk-size"));
    assert_eq!(cli.serve.policy.min_chunk_sec(false), 0.5);
    assert_eq!(cli.serve.policy.buffer_trimming_sec, 6.0);
    let sim = Cli::try_parse_from(["reswhis", "simulate", "a.wav", "--fast"]).unwrap();
    assert!(matches!(sim.command, Some(Command::Simulate(ref s)) if s.fast));
    assert!(Cli::try_parse_from(["reswhis", "--min-chunk-size", "0"]).is_err());
    assert!(Cli::try_parse_from(["reswhis", "--vad", "maybe"]).is_err());
    let vad = Cli::try_parse_from(["reswhis", "--vad", "True"]).unwrap();
    assert!(vad.serve.voice.vad);
    assert!(vad.serve.voice.vac, "VAC is on by default");
    assert!(Cli::try_parse_from(["reswhis", "--vac-threshold", "1.5"]).is_err());
    let vac =
        Cli::try_parse_from(["reswhis", "--vac", "on", "--vac-min-silence-ms", "800"]).unwrap();
    assert!(vac.serve.voice.vac);
    assert_eq!(vac.serve.voice.gate_config().min_silence, 12_800);
    assert_eq!(
        vac.serve.voice.vad_model_path(Path::new("models")),
        PathBuf::from("models/ggml-silero-v6.2.0.bin")
    );
    let path = Cli::try_parse_from(["reswhis", "--model", "/m/ggml-base.en.bin"]).unwrap();
    assert_eq!(path.serve.model.model_label(), "base.en");
    let custom = Cli::try_parse_from(["reswhis", "--model", "my.bin"]).unwrap();
    assert_eq!(custom.serve.model.model_label(), "my");
}

#[test]
fn bench_scenarios_frames_and_load_parse() {
    let bench = |flags: &[&str]| match Cli::try_parse_from(["reswhis", "bench"].iter().chain(flags))
    {
        Ok(Cli {
            command: Some(Command::Bench(args)),
            ..
        }) => Ok(args),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e),
    };
    let defaults = bench(&[]).unwrap();
    assert_eq!(
        (defaults.scenario, defaults.frame_ms, defaults.busy_cores),
        (Scenario::Files, vec![100], 0)
    );
    let args = bench(&[
        "--scenario",
        "pauses",
        "--frame-ms",
        "20,100,1000",
        "--busy-cores",
        "2",
    ])
    .unwrap();
    assert_eq!(args.scenario.as_str(), "pauses");
    assert_eq!(args.frame_ms, [20, 100, 1000]);
    assert_eq!(args.busy_cores, 2);
    assert!(bench(&["--scenario", "speech"]).is_err());
    assert!(bench(&["--frame-ms", "100,5"]).is_err());
    // The spinner of --busy-cores is a subcommand, but not one to offer.
    let spin = Cli::try_parse_from(["reswhis", "spin"]).unwrap();
    assert!(matches!(spin.command, Some(Command::Spin)));
    use clap::CommandFactory;
    let help = Cli::command().render_help().to_string();
    assert!(help.contains("bench") && !help.contains("spin"), "{help}");
}
