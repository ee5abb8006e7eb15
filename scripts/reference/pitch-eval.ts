// Dev-only: scores the pitch tracker against Praat (pipelines/speech/fixtures/praat-pitch.json)
// on every clip and against the PTDB-TUG laryngograph track, and prints JFK's session pitch
// statistics next to Praat's.
//
//   node --import tsx scripts/reference/pitch-eval.ts [ptdbFirstFrameS=0.025]
import { computeSpeechFeatures, createSpeechFeaturePlan, pitchStats } from '../../pipelines/speech/index.js';
import { clipPath, praatClips, ptdbReference, referenceStats, scoreAgainst } from '../../pipelines/speech/pitch-eval.test-util.js';
import { readWavFile } from '../../pipelines/speech/wav.test-util.js';

const pct = (x: number) => (100 * x).toFixed(1).padStart(5);
const plan = createSpeechFeaturePlan(JSON.parse(process.env.PITCH_OPTS ?? '{}'));
for (const clip of praatClips()) {
  const wav = readWavFile(clipPath(clip.name));
  const f = computeSpeechFeatures(wav.samples, plan);
  const s = scoreAgainst(f, clip);
  const ours = pitchStats(f.f0Hz, f.voiced);
  const ref = referenceStats(clip);
  console.log(
    `${clip.role.slice(0, 4)} ${clip.name.padEnd(56)} GPE ${pct(s.gpe)} % (${s.grossHigh} high, ${s.grossLow} low of ${s.bothVoiced})` +
      `  recall ${pct(s.recall)} %  agree ${pct(s.agreement)} %` +
      `  mean/SD/max ours ${ours.meanHz?.toFixed(0)}/${ours.sdHz?.toFixed(0)}/${ours.maxHz?.toFixed(0)} Praat ${ref.meanHz.toFixed(0)}/${ref.sdHz.toFixed(0)}/${ref.maxHz.toFixed(0)}`,
  );
  if (clip.name.startsWith('pitch/')) {
    const lar = scoreAgainst(f, ptdbReference(Number(process.argv[2] ?? 0.025)));
    console.log(
      `     PTDB-TUG laryngograph: GPE ${pct(lar.gpe)} % (${lar.grossHigh} high, ${lar.grossLow} low of ${lar.bothVoiced})  recall ${pct(lar.recall)} %  agreement ${pct(lar.agreement)} %`,
    );
  }
}
