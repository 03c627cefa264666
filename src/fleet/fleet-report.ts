export async function writeFleetReport(_store: string, _campaign: string, _out: string): Promise<number> {
  throw new Error('the fleet report is not built yet');
}
